//! Load harness for the HR feed: `careid hr import` of a generated ESR extract.
//!
//! Builds a fresh database (SQLite by default) with the sample RBAC data, two mapped HR
//! positions and `--people` identities, writes an extract of `--events` events (CSV, or JSON
//! Lines with `--format jsonl`) for those people, then runs the release `careid hr import` on it
//! and reports events/s and the importing process's peak RSS. Each person has five events in
//! recorded order: identity link, starter, mover, a new end date, and either a details change
//! or (every tenth person) a leaver. Afterwards it checks that every event was applied and that
//! each person holds what their events say.
//!
//! Run: `cargo bench --bench hr_import -- [--events 100000] [--people 20000] [--format csv|jsonl]
//! [--postgres URL]`. Compare peak RSS across `--events` sizes to see that the import streams.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use careid::clock::{Clock, SystemClock};
use careid::model::hr::PositionMap;
use careid::model::identity::{User, UserStatus};
use careid::model::rbac::{Position, Profile};
use careid::store::Db;

const SAMPLE: &str = include_str!("../config/rbac-sample.json");
const DAY: i64 = 86_400;

struct Args {
    events: usize,
    people: usize,
    format: String,
    postgres: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        events: 100_000,
        people: 20_000,
        format: "csv".into(),
        postgres: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--events" => a.events = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.events),
            "--people" => a.people = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.people),
            "--format" => a.format = it.next().unwrap_or(a.format),
            "--postgres" => a.postgres = it.next(),
            _ => {}
        }
    }
    a
}

fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn uuid_of(person: usize) -> String {
    format!("77{person:010}")
}

/// The `k`th event (0..5) of `person`, as CSV fields in `COLUMNS` order.
fn event(person: usize, k: usize, now: i64) -> [String; 10] {
    let p = format!("E{person:07}");
    let recorded = rfc3339(now - 10 * DAY + (k as i64) * 3600 + person as i64 % 3600);
    let id = format!("{p}-{k}");
    let blank = String::new;
    match k {
        0 => [
            id,
            "identity_link".into(),
            p,
            recorded,
            blank(),
            blank(),
            blank(),
            blank(),
            uuid_of(person),
            blank(),
        ],
        1 => [
            id,
            "starter".into(),
            p.clone(),
            recorded,
            format!("{p}-1"),
            "NURSE-B5".into(),
            rfc3339(now - 30 * DAY),
            blank(),
            blank(),
            blank(),
        ],
        2 => [
            id,
            "assignment_change".into(),
            p.clone(),
            recorded,
            format!("{p}-1"),
            "SISTER-B7".into(),
            blank(),
            rfc3339(now - DAY),
            blank(),
            blank(),
        ],
        3 => [
            id,
            "assignment_change".into(),
            p.clone(),
            recorded,
            format!("{p}-1"),
            blank(),
            blank(),
            rfc3339(now - DAY),
            blank(),
            rfc3339(now + 400 * DAY),
        ],
        _ if person.is_multiple_of(10) => [
            id,
            "leaver".into(),
            p,
            recorded,
            blank(),
            blank(),
            blank(),
            blank(),
            blank(),
            blank(),
        ],
        _ => [
            id,
            "details_change".into(),
            p,
            recorded,
            blank(),
            blank(),
            blank(),
            blank(),
            blank(),
            blank(),
        ],
    }
}

const COLUMNS: [&str; 10] = [
    "event_id",
    "kind",
    "person_id",
    "recorded_at",
    "assignment_id",
    "hr_position",
    "starts_on",
    "effective_from",
    "uuid",
    "ends_on",
];

/// Writes the extract: events in recorded order across people (as an extract is).
fn write_extract(path: &std::path::Path, a: &Args, now: i64) -> usize {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let per_person = 5;
    let people = a.people.min(a.events / per_person).max(1);
    let leaving = rfc3339(now - 3600);
    let mut written = 0;
    if a.format == "csv" {
        writeln!(out, "org_code,{},leaving_on,email", COLUMNS.join(",")).unwrap();
    }
    for k in 0..per_person {
        for person in 0..people {
            let f = event(person, k, now);
            let (leaving_on, email) = match f[1].as_str() {
                "leaver" => (leaving.clone(), String::new()),
                "details_change" => (String::new(), format!("e{person}@trust.nhs.uk")),
                _ => (String::new(), String::new()),
            };
            if a.format == "csv" {
                writeln!(out, "RZ9,{},{leaving_on},{email}", f.join(",")).unwrap();
            } else {
                let mut o = serde_json::Map::new();
                o.insert("org_code".into(), "RZ9".into());
                for (name, v) in COLUMNS.iter().zip(f.iter()) {
                    if !v.is_empty() {
                        o.insert((*name).into(), v.clone().into());
                    }
                }
                if !leaving_on.is_empty() {
                    o.insert("leaving_on".into(), leaving_on.into());
                }
                if !email.is_empty() {
                    o.insert("email".into(), email.into());
                }
                writeln!(out, "{}", serde_json::Value::Object(o)).unwrap();
            }
            written += 1;
        }
    }
    out.flush().unwrap();
    written
}

async fn prepare(db: &Db, people: usize, now: i64) {
    db.migrate().await.unwrap();
    careid::domain::rbac::import(db, SAMPLE, "bench", now)
        .await
        .unwrap();
    for (id, hr, role) in [
        ("hr-nurse", "NURSE-B5", "R8001"),
        ("hr-sister", "SISTER-B7", "R8000"),
    ] {
        let position = Position {
            id: id.into(),
            org_code: "RZ9".into(),
            name: id.into(),
            esr_position: None,
            profiles: vec![Profile {
                org_code: "RZ9".into(),
                job_role: role.into(),
                activities: vec![],
                workgroups: vec![],
                areas_of_work: vec![],
            }],
        };
        db.upsert_position(&position, now).await.unwrap();
        db.set_position_map(&PositionMap {
            org_code: "RZ9".into(),
            hr_position: hr.into(),
            position_id: id.into(),
            approved_by: "bench".into(),
            mapped_by: "bench".into(),
            mapped_at: now,
        })
        .await
        .unwrap();
    }
    use futures::StreamExt;
    futures::stream::iter(0..people)
        .map(|p| async move {
            let user = User {
                uuid: uuid_of(p),
                title: None,
                given_name: "Bench".into(),
                middle_names: None,
                family_name: format!("Person{p}"),
                email: None,
                id_assurance_level: 3,
                status: UserStatus::Active,
            };
            db.insert_user(&user, now).await.unwrap();
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let a = args();
    let dir = tempfile::tempdir().unwrap();
    let url = match &a.postgres {
        Some(u) => u.clone(),
        None => format!("sqlite://{}/careid.db", dir.path().display()),
    };
    let now = SystemClock.now();
    let db = Db::connect(&url, 8).await.unwrap();
    let started = Instant::now();
    prepare(&db, a.people, now).await;
    let file = dir.path().join(format!("esr-extract.{}", a.format));
    let events = write_extract(&file, &a, now);
    let size = std::fs::metadata(&file).unwrap().len();
    println!(
        "prepared {} identities and {events} events ({:.1} MB, {}) in {:.1} s",
        a.people,
        size as f64 / 1e6,
        a.format,
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_careid"))
        .current_dir(dir.path())
        .env("CAREID_DATABASE__URL", &url)
        .env("CAREID_LOG__FILTER", "warn")
        .args(["hr", "import", file.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        peak = peak.max(rss_kib(pid, "VmHWM:"));
        std::thread::sleep(Duration::from_millis(20));
    };
    let secs = started.elapsed().as_secs_f64();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    print!("careid hr import: {out}");
    assert!(status.success(), "the import failed");
    println!(
        "imported {events} events in {secs:.2} s: {:.0} events/s; peak RSS {:.1} MiB",
        events as f64 / secs,
        peak as f64 / 1024.0
    );

    // Every event applied, and each person holds what their events say.
    let counts = db.hr_inbox_counts().await.unwrap();
    assert_eq!(
        counts.get("applied").copied().unwrap_or(0) as usize,
        events,
        "{counts:?}"
    );
    for p in [1usize, 10, a.people.min(events / 5) - 1] {
        let held: Vec<String> = db
            .current_assignments(&uuid_of(p), now)
            .await
            .unwrap()
            .into_iter()
            .map(|(r, _)| r.position_id)
            .collect();
        let expected: Vec<&str> = if p.is_multiple_of(10) {
            vec![]
        } else {
            vec!["hr-sister"]
        };
        assert_eq!(held, expected, "person {p}");
    }
    println!("checked: every event applied; movers hold the new position, leavers nothing");
}
