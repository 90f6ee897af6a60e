//! Reports for RA Managers and operators: active users by organisation, positions in use,
//! authenticators by type, temporary access cards issued (open, overdue, per RA member) and
//! overdue, and leavers who can still sign in; each also as CSV.

use super::ra::answers::Report;

use crate::clock::UnixTime;
use crate::store::{Db, StoreError};

pub const REPORTS: [&str; 6] = [
    "active-users-by-org",
    "positions-in-use",
    "authenticators-by-type",
    "tacs-issued",
    "tacs-overdue",
    "leavers-with-access",
];

/// The named report at `now`, or None for an unknown name.
pub async fn run(db: &Db, name: &str, now: UnixTime) -> Result<Option<Report>, StoreError> {
    let rows = match name {
        "active-users-by-org" => db.report_active_users_by_org(now).await?,
        "positions-in-use" => db.report_positions_in_use(now).await?,
        "authenticators-by-type" => db.report_authenticators_by_type().await?,
        "tacs-issued" => db.report_tacs(now).await?,
        "tacs-overdue" => db.report_tacs_overdue(now).await?,
        "leavers-with-access" => db.report_leavers_with_access(now).await?,
        _ => return Ok(None),
    };
    Ok(Some(Report {
        report: name.to_string(),
        generated_at: now,
        rows,
    }))
}

/// A report as CSV (RFC 4180): one line per row, the columns of the first row (sorted) as the
/// header.
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
    fn the_tac_report_lists_its_issues() {
        let report = Report {
            report: "tacs-issued".into(),
            generated_at: 0,
            rows: json!({ "overdue": 1, "issues": [{ "tac_name": "TAC 1" }] }),
        };
        assert_eq!(to_csv(&report), "tac_name\nTAC 1\n");
    }
}
