//! Reading HR events: a [`RawEvent`] (one JSON object, or one CSV row) checked into an
//! [`HrEvent`], with a reason a person can act on when it is not one; the CSV header; the
//! digest that tells a duplicate from a reused id.

use crate::clock::UnixTime;
use crate::domain::secrets;
use crate::model::hr::{EventBody, HrDetails, HrEvent, RawEvent, StaffKind};
use crate::model::identity::is_valid_uuid;

/// The columns a CSV extract may have (a header row names those it uses, in any order).
pub const CSV_COLUMNS: [&str; 22] = [
    "event_id",
    "kind",
    "org_code",
    "person_id",
    "recorded_at",
    "assignment_id",
    "hr_position",
    "starts_on",
    "ends_on",
    "staff_kind",
    "effective_from",
    "leaving_on",
    "uuid",
    "title",
    "given_name",
    "middle_names",
    "family_name",
    "date_of_birth",
    "ni_number",
    "email",
    "work_phone",
    "work_mobile",
];

/// Longest id, code or name accepted in an event field.
const MAX_FIELD: usize = 200;

/// A date (`YYYY-MM-DD`, 00:00 UTC) or an RFC 3339 instant, as unix seconds.
pub fn parse_instant(field: &str, s: &str) -> Result<UnixTime, String> {
    let s = s.trim();
    let date = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s, &date) {
        return Ok(d.midnight().assume_utc().unix_timestamp());
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| format!("{field} must be a date (YYYY-MM-DD) or an RFC 3339 time, not {s:?}"))
}

fn required<'a>(field: &str, v: &'a Option<String>) -> Result<&'a str, String> {
    match v.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(format!("{field} is required for this kind of event")),
    }
}

fn instant(field: &str, v: &Option<String>) -> Result<Option<UnixTime>, String> {
    match v.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => parse_instant(field, s).map(Some),
        _ => Ok(None),
    }
}

fn identifier(field: &str, s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err(format!("{field} is required"));
    }
    if s.len() > MAX_FIELD || s.chars().any(char::is_control) {
        return Err(format!(
            "{field} must be at most {MAX_FIELD} characters without control characters"
        ));
    }
    Ok(s.to_string())
}

/// Empty strings (a CSV's blank cells) become absent fields, and values are trimmed.
pub fn tidy(mut raw: RawEvent) -> RawEvent {
    for f in [
        &mut raw.assignment_id,
        &mut raw.hr_position,
        &mut raw.starts_on,
        &mut raw.ends_on,
        &mut raw.staff_kind,
        &mut raw.effective_from,
        &mut raw.leaving_on,
        &mut raw.uuid,
        &mut raw.title,
        &mut raw.given_name,
        &mut raw.middle_names,
        &mut raw.family_name,
        &mut raw.date_of_birth,
        &mut raw.ni_number,
        &mut raw.email,
        &mut raw.work_phone,
        &mut raw.work_mobile,
    ] {
        *f = f
            .take()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
    }
    for f in [
        &mut raw.event_id,
        &mut raw.kind,
        &mut raw.org_code,
        &mut raw.person_id,
        &mut raw.recorded_at,
    ] {
        *f = f.trim().to_string();
    }
    raw
}

/// Checks an event: the fields its kind needs, dates, and nothing that belongs to another kind.
pub fn check(raw: &RawEvent) -> Result<HrEvent, String> {
    let event_id = identifier("event_id", &raw.event_id)?;
    let org_code = identifier("org_code", &raw.org_code)?.to_uppercase();
    if !(3..=10).contains(&org_code.len()) || !org_code.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!("org_code {org_code:?} is not an ODS code"));
    }
    let person_id = identifier("person_id", &raw.person_id)?;
    let recorded_at = parse_instant("recorded_at", &raw.recorded_at)?;
    let body = match raw.kind.as_str() {
        "starter" => {
            let starts_at = parse_instant("starts_on", required("starts_on", &raw.starts_on)?)?;
            let ends_at = instant("ends_on", &raw.ends_on)?;
            if ends_at.is_some_and(|e| e <= starts_at) {
                return Err("ends_on must be after starts_on".into());
            }
            let staff_kind = match raw.staff_kind.as_deref() {
                None | Some("employee") => StaffKind::Employee,
                Some("contractor") => StaffKind::Contractor,
                Some("inter_org") => StaffKind::InterOrg,
                Some(other) => {
                    return Err(format!(
                        "staff_kind must be employee, contractor or inter_org, not {other:?}"
                    ))
                }
            };
            EventBody::Starter {
                assignment_id: identifier("assignment_id", required("assignment_id", &raw.assignment_id)?)?,
                hr_position: identifier("hr_position", required("hr_position", &raw.hr_position)?)?,
                starts_at,
                ends_at,
                staff_kind,
            }
        }
        "assignment_change" => {
            let hr_position = raw
                .hr_position
                .as_deref()
                .map(|p| identifier("hr_position", p))
                .transpose()?;
            let ends_at = instant("ends_on", &raw.ends_on)?;
            if hr_position.is_none() && ends_at.is_none() {
                return Err("an assignment_change needs hr_position, ends_on or both".into());
            }
            EventBody::AssignmentChange {
                assignment_id: identifier("assignment_id", required("assignment_id", &raw.assignment_id)?)?,
                effective_from: parse_instant(
                    "effective_from",
                    required("effective_from", &raw.effective_from)?,
                )?,
                hr_position,
                ends_at,
            }
        }
        "leaver" => EventBody::Leaver {
            leaving_at: parse_instant("leaving_on", required("leaving_on", &raw.leaving_on)?)?,
        },
        "details_change" => {
            let d = HrDetails {
                title: raw.title.clone(),
                given_name: raw.given_name.clone(),
                middle_names: raw.middle_names.clone(),
                family_name: raw.family_name.clone(),
                date_of_birth: raw.date_of_birth.clone(),
                ni_number: raw.ni_number.clone(),
                email: raw.email.clone(),
                work_phone: raw.work_phone.clone(),
                work_mobile: raw.work_mobile.clone(),
            };
            if d == HrDetails::default() {
                return Err("a details_change needs at least one personal detail".into());
            }
            let too_long = [
                &d.title,
                &d.given_name,
                &d.middle_names,
                &d.family_name,
                &d.date_of_birth,
                &d.ni_number,
                &d.email,
                &d.work_phone,
                &d.work_mobile,
            ]
            .into_iter()
            .flatten()
            .any(|v| v.len() > MAX_FIELD);
            if too_long {
                return Err(format!("personal details are at most {MAX_FIELD} characters"));
            }
            EventBody::DetailsChange(d)
        }
        "identity_link" => {
            let uuid = required("uuid", &raw.uuid)?;
            if !is_valid_uuid(uuid) {
                return Err(format!("uuid {uuid:?} is not a 12-digit Care Identity UUID"));
            }
            EventBody::IdentityLink { uuid: uuid.into() }
        }
        other => {
            return Err(format!(
                "kind must be starter, assignment_change, leaver, details_change or identity_link, not {other:?}"
            ))
        }
    };
    refuse_foreign_fields(raw, &body)?;
    Ok(HrEvent {
        event_id,
        org_code,
        person_id,
        recorded_at,
        body,
    })
}

/// A field of another kind is a sign of a mapping mistake in the extract: refused, not ignored.
fn refuse_foreign_fields(raw: &RawEvent, body: &EventBody) -> Result<(), String> {
    let detail_fields = [
        ("title", &raw.title),
        ("given_name", &raw.given_name),
        ("middle_names", &raw.middle_names),
        ("family_name", &raw.family_name),
        ("date_of_birth", &raw.date_of_birth),
        ("ni_number", &raw.ni_number),
        ("email", &raw.email),
        ("work_phone", &raw.work_phone),
        ("work_mobile", &raw.work_mobile),
    ];
    let mut present: Vec<(&str, bool)> = vec![
        ("assignment_id", raw.assignment_id.is_some()),
        ("hr_position", raw.hr_position.is_some()),
        ("starts_on", raw.starts_on.is_some()),
        ("ends_on", raw.ends_on.is_some()),
        ("staff_kind", raw.staff_kind.is_some()),
        ("effective_from", raw.effective_from.is_some()),
        ("leaving_on", raw.leaving_on.is_some()),
        ("uuid", raw.uuid.is_some()),
    ];
    present.extend(detail_fields.iter().map(|(n, v)| (*n, v.is_some())));
    let allowed: &[&str] = match body {
        EventBody::Starter { .. } => &[
            "assignment_id",
            "hr_position",
            "starts_on",
            "ends_on",
            "staff_kind",
        ],
        EventBody::AssignmentChange { .. } => {
            &["assignment_id", "hr_position", "ends_on", "effective_from"]
        }
        EventBody::Leaver { .. } => &["leaving_on"],
        EventBody::DetailsChange(_) => &[
            "title",
            "given_name",
            "middle_names",
            "family_name",
            "date_of_birth",
            "ni_number",
            "email",
            "work_phone",
            "work_mobile",
        ],
        EventBody::IdentityLink { .. } => &["uuid"],
    };
    match present
        .iter()
        .find(|(name, set)| *set && !allowed.contains(name))
    {
        Some((name, _)) => Err(format!("{name} does not belong in a {} event", body.kind())),
        None => Ok(()),
    }
}

/// What identifies an event's content: the same id with another digest is a reused id.
pub fn digest(raw: &RawEvent) -> String {
    secrets::digest(&serde_json::to_string(raw).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starter() -> RawEvent {
        RawEvent {
            event_id: "E1".into(),
            kind: "starter".into(),
            org_code: "rx1".into(),
            person_id: "P1".into(),
            recorded_at: "2026-12-01T09:00:00Z".into(),
            assignment_id: Some("A1".into()),
            hr_position: Some("NURSE".into()),
            starts_on: Some("2026-12-07".into()),
            ..RawEvent::default()
        }
    }

    #[test]
    fn a_starter_is_read_with_dates_at_midnight_utc() {
        let e = check(&starter()).unwrap();
        assert_eq!(e.org_code, "RX1");
        assert_eq!(e.recorded_at, 1_796_115_600);
        match e.body {
            EventBody::Starter {
                starts_at,
                staff_kind,
                ..
            } => {
                assert_eq!(starts_at, 1_796_601_600);
                assert_eq!(staff_kind, StaffKind::Employee);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_kind_names_what_it_is_missing() {
        let mut no_start = starter();
        no_start.starts_on = None;
        assert_eq!(
            check(&no_start).unwrap_err(),
            "starts_on is required for this kind of event"
        );
        let mut bad_kind = starter();
        bad_kind.kind = "promotion".into();
        assert!(check(&bad_kind).unwrap_err().contains("kind must be"));
        let mut change = starter();
        change.kind = "assignment_change".into();
        change.starts_on = None;
        change.hr_position = None;
        change.effective_from = Some("2027-01-01".into());
        assert!(check(&change)
            .unwrap_err()
            .contains("needs hr_position, ends_on"));
        let mut link = starter();
        link.kind = "identity_link".into();
        link.assignment_id = None;
        link.hr_position = None;
        link.starts_on = None;
        link.uuid = Some("12345".into());
        assert!(check(&link).unwrap_err().contains("12-digit"));
    }

    #[test]
    fn a_field_of_another_kind_is_refused() {
        let mut s = starter();
        s.leaving_on = Some("2027-01-01".into());
        assert_eq!(
            check(&s).unwrap_err(),
            "leaving_on does not belong in a starter event"
        );
    }

    #[test]
    fn bad_dates_and_windows_are_refused() {
        let mut s = starter();
        s.starts_on = Some("07/12/2026".into());
        assert!(check(&s).unwrap_err().contains("starts_on must be a date"));
        let mut s = starter();
        s.ends_on = Some("2026-12-01".into());
        assert_eq!(check(&s).unwrap_err(), "ends_on must be after starts_on");
        let mut s = starter();
        s.recorded_at = "yesterday".into();
        assert!(check(&s).unwrap_err().starts_with("recorded_at"));
    }

    #[test]
    fn blank_cells_are_absent_and_the_digest_sees_content() {
        let mut s = starter();
        s.ends_on = Some("  ".into());
        let s = tidy(s);
        assert_eq!(s.ends_on, None);
        assert_eq!(digest(&s), digest(&starter()));
        let mut other = starter();
        other.hr_position = Some("DOCTOR".into());
        assert_ne!(digest(&other), digest(&starter()));
    }
}
