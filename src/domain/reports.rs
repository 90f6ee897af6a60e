//! Reports for RA Managers and operators: active users by organisation, positions in use,
//! authenticators by type, temporary access cards issued (open, overdue, per RA member) and
//! overdue, and leavers who can still sign in (snapshots at `now`); and the RA activity of a
//! quarter or a year (the periodic report to the IG Steering Group, policy 002 section 10).
//! Each also as CSV.

use super::ra::answers::Report;

use crate::clock::UnixTime;
use crate::store::{Db, StoreError};

pub const REPORTS: [&str; 8] = [
    "active-users-by-org",
    "positions-in-use",
    "authenticators-by-type",
    "tacs-issued",
    "tacs-overdue",
    "leavers-with-access",
    "ra-activity",
    "hr-reconciliation",
];

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0}")]
    BadPeriod(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A reporting period: a calendar quarter (`2026-Q3`) or year (`2026`), in UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub label: String,
    pub from: UnixTime,
    pub until: UnixTime,
}

impl Period {
    pub fn parse(s: &str) -> Option<Period> {
        let s = s.trim();
        let (year, quarter) = match s.split_once("-Q") {
            Some((y, q)) => (
                y,
                Some(q.parse::<u8>().ok().filter(|q| (1..=4).contains(q))?),
            ),
            None => (s, None),
        };
        let year: i32 = year.parse().ok().filter(|y| (1970..=9999).contains(y))?;
        let start = |y: i32, month: u8| -> Option<UnixTime> {
            let m = time::Month::try_from(month).ok()?;
            Some(
                time::Date::from_calendar_date(y, m, 1)
                    .ok()?
                    .midnight()
                    .assume_utc()
                    .unix_timestamp(),
            )
        };
        let (from, until) = match quarter {
            Some(4) => (start(year, 10)?, start(year + 1, 1)?),
            Some(q) => (start(year, 3 * q - 2)?, start(year, 3 * q + 1)?),
            None => (start(year, 1)?, start(year + 1, 1)?),
        };
        Some(Period {
            label: s.to_string(),
            from,
            until,
        })
    }

    /// The calendar quarter `t` falls in.
    pub fn quarter_of(t: UnixTime) -> Period {
        let d = time::OffsetDateTime::from_unix_timestamp(t)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let q = (u8::from(d.month()) - 1) / 3 + 1;
        Period::parse(&format!("{}-Q{q}", d.year())).expect("a valid quarter")
    }
}

/// The named report at `now` (`period` only for `ra-activity`, which defaults to the current
/// quarter), or None for an unknown name.
pub async fn run(
    db: &Db,
    name: &str,
    now: UnixTime,
    period: Option<&str>,
) -> Result<Option<Report>, ReportError> {
    if name == "ra-activity" {
        let period = match period {
            Some(p) => Period::parse(p).ok_or_else(|| {
                ReportError::BadPeriod("period must be a year (2026) or a quarter (2026-Q3)".into())
            })?,
            None => Period::quarter_of(now),
        };
        let rows = db.report_ra_activity(period.from, period.until).await?;
        return Ok(Some(Report {
            report: name.to_string(),
            generated_at: now,
            period: Some(period.label),
            rows,
        }));
    }
    if period.is_some() && REPORTS.contains(&name) {
        return Err(ReportError::BadPeriod(format!(
            "{name} is a snapshot of now; only ra-activity covers a period"
        )));
    }
    let rows = match name {
        "active-users-by-org" => db.report_active_users_by_org(now).await?,
        "positions-in-use" => db.report_positions_in_use(now).await?,
        "authenticators-by-type" => db.report_authenticators_by_type().await?,
        "tacs-issued" => db.report_tacs(now).await?,
        "tacs-overdue" => db.report_tacs_overdue(now).await?,
        "leavers-with-access" => db.report_leavers_with_access(now).await?,
        "hr-reconciliation" => {
            serde_json::Value::Array(super::hr::reconcile::reconciliation(db, now).await?)
        }
        _ => return Ok(None),
    };
    Ok(Some(Report {
        report: name.to_string(),
        generated_at: now,
        period: None,
        rows,
    }))
}

/// A report as CSV (RFC 4180): one line per row, the columns of the first row (sorted) as the
/// header; an empty file when there are no rows.
/// `tacs-issued` lists its issues. A text cell that a spreadsheet would run as a formula
/// (starting `=`, `+`, `-`, `@`, tab or CR) is prefixed with `'` (OWASP CSV injection).
pub fn to_csv(report: &Report) -> String {
    let empty = Vec::new();
    let rows = match &report.rows {
        serde_json::Value::Array(rows) => rows,
        serde_json::Value::Object(o) => o
            .get("issues")
            .and_then(serde_json::Value::as_array)
            .unwrap_or(&empty),
        _ => &empty,
    };
    // Sorted, so the header does not depend on how the JSON map keeps its keys.
    let mut columns: Vec<String> = rows
        .first()
        .and_then(serde_json::Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    columns.sort();
    if columns.is_empty() {
        return String::new();
    }
    let mut out = csv::Writer::from_writer(Vec::new());
    let _ = out.write_record(&columns);
    for row in rows {
        let cells = columns.iter().map(|c| cell(row.get(c)));
        let _ = out.write_record(cells);
    }
    String::from_utf8(out.into_inner().unwrap_or_default()).unwrap_or_default()
}

fn cell(v: Option<&serde_json::Value>) -> String {
    match v {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => {
            if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{s}")
            } else {
                s.clone()
            }
        }
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_has_a_header_quotes_commas_and_defuses_formulas() {
        let report = Report {
            report: "r".into(),
            generated_at: 0,
            period: None,
            rows: json!([
                { "name": "Ward 7, Nights", "n": 3, "note": "=HYPERLINK(\"x\")" },
                { "name": "Plain", "n": 1, "note": null }
            ]),
        };
        assert_eq!(
            to_csv(&report),
            "n,name,note\n3,\"Ward 7, Nights\",\"'=HYPERLINK(\"\"x\"\")\"\n1,Plain,\n"
        );
    }

    #[test]
    fn periods_are_calendar_quarters_and_years_in_utc() {
        let q3 = Period::parse("2026-Q3").unwrap();
        assert_eq!((q3.from, q3.until), (1_782_864_000, 1_790_812_800)); // 1 Jul, 1 Oct 2026
        let q4 = Period::parse("2026-Q4").unwrap();
        assert_eq!(q4.until, Period::parse("2027").unwrap().from);
        let year = Period::parse("2026").unwrap();
        assert_eq!(
            (year.from, year.until),
            (Period::parse("2026-Q1").unwrap().from, q4.until)
        );
        for bad in ["2026-Q5", "2026-Q0", "26", "2026-03", "", "x-Q1"] {
            assert!(Period::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(Period::quarter_of(1_785_000_000).label, "2026-Q3");
    }

    #[test]
    fn the_tac_report_lists_its_issues() {
        let report = Report {
            report: "tacs-issued".into(),
            generated_at: 0,
            period: None,
            rows: json!({ "overdue": 1, "issues": [{ "tac_name": "TAC 1" }] }),
        };
        assert_eq!(to_csv(&report), "tac_name\nTAC 1\n");
    }
}
