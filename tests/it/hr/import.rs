//! `careid hr import`: CSV and JSON Lines extracts streamed through the same path as the API,
//! every bad line named, the good ones applied; the command's output and exit status.

use std::process::Command;

use careid::domain::hr::feed::ImportFormat;

use super::*;

fn csv_extract(hr: &Hr) -> String {
    let t = |s: i64| at(&hr.env, s);
    format!(
        "event_id,kind,org_code,person_id,recorded_at,assignment_id,hr_position,starts_on,uuid,family_name,leaving_on\n\
         i1,identity_link,RZ9,I1,{},,,,830000000001,,\n\
         i2,starter,RZ9,I1,{},I1-1,NURSE-B5,{},,,\n\
         i3,starter,RZ9,I1,{},I1-2,,{},,,\n\
         i4,details_change,RZ9,I1,{},,,,,Okafor-Smith,\n\
         i5,leaver,RZ9,I2,{},,,,,,not-a-date\n",
        t(-100),
        t(-90),
        t(-DAY),
        t(-80),
        t(-DAY),
        t(-70),
        t(-60),
    )
}

#[tokio::test]
async fn a_csv_extract_applies_its_good_rows_and_names_each_bad_line() {
    let hr = setup().await;
    hr.env.user("830000000001").await;
    let p = &hr.env.server.provider;
    let report = p
        .import_hr_file(
            csv_extract(&hr).as_bytes(),
            ImportFormat::Csv,
            "file:test.csv",
        )
        .await
        .unwrap();
    assert_eq!(report.received, 5);
    assert_eq!(report.recorded, 3);
    let bad: Vec<(u64, &str)> = report
        .rejected
        .iter()
        .map(|r| (r.line, r.reason.as_str()))
        .collect();
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert_eq!(
        bad[0],
        (4, "hr_position is required for this kind of event")
    );
    assert_eq!(bad[1].0, 6);
    assert!(bad[1].1.contains("leaving_on must be a date"));
    assert_eq!(
        hr.current_positions("830000000001").await,
        vec![hr.nurse.clone()]
    );
    let changes = p
        .admin_list_detail_changes(&ra_manager())
        .await
        .unwrap()
        .changes;
    assert_eq!(changes.len(), 1, "the surname change waits for an RA");
    assert_eq!(
        changes[0].changes[0].proposed.as_deref(),
        Some("Okafor-Smith")
    );

    // The same file again: every good row is a duplicate, nothing changes.
    let again = p
        .import_hr_file(
            csv_extract(&hr).as_bytes(),
            ImportFormat::Csv,
            "file:test.csv",
        )
        .await
        .unwrap();
    assert_eq!((again.recorded, again.duplicates.len()), (0, 3));
    assert_eq!(
        p.admin_list_detail_changes(&ra_manager())
            .await
            .unwrap()
            .changes
            .len(),
        1
    );
}

#[tokio::test]
async fn a_csv_with_an_unknown_column_is_refused_before_anything_is_recorded() {
    let hr = setup().await;
    let text =
        "event_id,kind,org_code,person_id,recorded_at,salary\ne1,leaver,RZ9,P,2026-12-01,1\n";
    let err = hr
        .env
        .server
        .provider
        .import_hr_file(text.as_bytes(), ImportFormat::Csv, "file:x.csv")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("unknown column \"salary\""),
        "{err}"
    );
    assert!(hr.env.db.hr_event("e1").await.unwrap().is_none());
}

#[tokio::test]
async fn the_command_imports_json_lines_and_fails_when_a_line_is_bad() {
    let hr = setup().await;
    hr.env.user("830000000002").await;
    let lines = [
        hr.link("j1", "J1", "830000000002", -100).to_string(),
        String::new(),
        hr.starter("j2", "J1", "SISTER-B7", -DAY, -90).to_string(),
        "{ not json".to_string(),
    ];
    let file = hr.env.dir.path().join("esr-extract.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_careid"))
        .current_dir(hr.env.dir.path())
        .env("CAREID_DATABASE__URL", &hr.env.database_url)
        .env("CAREID_KEYS__ENCRYPTION_KEY", test_encryption_key())
        .args(["hr", "import", file.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("3 rows: 2 recorded, 0 duplicates, 1 rejected"),
        "{stdout}"
    );
    assert!(stderr.contains("line 4: "), "{stderr}");
    assert_eq!(
        hr.current_positions("830000000002").await,
        vec![hr.sister.clone()]
    );
}
