//! What a person's HR events add up to: the stretches of each HR assignment in each HR
//! position, cut by a leaving date; the Care Identity they are linked to; their latest details.
//!
//! A pure fold over the events in recorded order. Applying a person means folding *all* their
//! events again and making the stored access match (`apply.rs`), so the result depends only on
//! which events arrived, never on the order they arrived in, and replaying the feed changes
//! nothing (nhs-processes rule 38).

use std::collections::BTreeMap;

use crate::clock::UnixTime;
use crate::model::hr::{EventBody, HrDetails, HrEvent, StaffKind};

const DAY: i64 = 86_400;
/// A contractor without a contract end date: three months (nhs-processes rule 40).
pub const CONTRACTOR_DAYS: i64 = 91;
/// Inter-organisation access: 12 months at most (rule 41).
pub const INTER_ORG_DAYS: i64 = 365;

/// One stretch of an HR assignment in one HR position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub assignment_id: String,
    pub hr_position: String,
    pub starts_at: UnixTime,
    pub ends_at: Option<UnixTime>,
    /// The event that put the assignment in this position (blamed if it is not mapped).
    pub source_event: String,
}

/// Where a person's events leave them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    /// Non-empty stretches, by assignment then start.
    pub segments: Vec<Segment>,
    /// When they left, unless a later starter re-hired them.
    pub left_at: Option<UnixTime>,
    pub linked_uuid: Option<String>,
    /// The latest value HR sent for each detail.
    pub details: Option<HrDetails>,
    /// Changes to an assignment with no starter and no position: nothing to apply yet.
    pub orphan_changes: Vec<String>,
}

fn clip(segments: &mut [Segment], at: UnixTime) {
    for s in segments {
        s.ends_at = Some(s.ends_at.map_or(at, |e| e.min(at)));
    }
}

fn starter_end(
    kind: StaffKind,
    starts_at: UnixTime,
    ends_at: Option<UnixTime>,
) -> Option<UnixTime> {
    match kind {
        StaffKind::Employee => ends_at,
        StaffKind::Contractor => Some(ends_at.unwrap_or(starts_at + CONTRACTOR_DAYS * DAY)),
        StaffKind::InterOrg => {
            let cap = starts_at + INTER_ORG_DAYS * DAY;
            Some(ends_at.map_or(cap, |e| e.min(cap)))
        }
    }
}

fn merge(into: &mut Option<HrDetails>, d: &HrDetails) {
    let target = into.get_or_insert_with(HrDetails::default);
    let pairs = [
        (&mut target.title, &d.title),
        (&mut target.given_name, &d.given_name),
        (&mut target.middle_names, &d.middle_names),
        (&mut target.family_name, &d.family_name),
        (&mut target.date_of_birth, &d.date_of_birth),
        (&mut target.ni_number, &d.ni_number),
        (&mut target.email, &d.email),
        (&mut target.work_phone, &d.work_phone),
        (&mut target.work_mobile, &d.work_mobile),
    ];
    for (t, v) in pairs {
        if v.is_some() {
            t.clone_from(v);
        }
    }
}

/// A change from `effective_from`: stretches starting later are replaced; the one in force then
/// (which may start at that very time) is ended (a new position) or given the new end (the same
/// position).
fn change(
    segments: &mut Vec<Segment>,
    event_id: &str,
    effective_from: UnixTime,
    hr_position: Option<&String>,
    ends_at: Option<UnixTime>,
) -> bool {
    let later_from = segments
        .iter()
        .position(|s| s.starts_at > effective_from)
        .unwrap_or(segments.len());
    let replaced: Vec<Segment> = segments.drain(later_from..).collect();
    let base = segments.last().or(replaced.first());
    let Some(position) = hr_position.or(base.map(|b| &b.hr_position)).cloned() else {
        return false;
    };
    let end = ends_at.or(base.and_then(|b| b.ends_at));
    match segments.last_mut() {
        Some(current) if current.hr_position == position => current.ends_at = end,
        Some(current) => {
            current.ends_at = Some(
                current
                    .ends_at
                    .map_or(effective_from, |e| e.min(effective_from)),
            );
            let next = Segment {
                assignment_id: current.assignment_id.clone(),
                hr_position: position,
                starts_at: effective_from,
                ends_at: end,
                source_event: event_id.into(),
            };
            segments.push(next);
        }
        None => {
            let first = replaced.first();
            segments.push(Segment {
                assignment_id: first.map(|f| f.assignment_id.clone()).unwrap_or_default(),
                hr_position: position,
                starts_at: first.map_or(effective_from, |f| f.starts_at.max(effective_from)),
                ends_at: end,
                source_event: event_id.into(),
            });
        }
    }
    true
}

/// Folds one person's events, which must be in recorded order (`recorded_at`, then id).
pub fn fold(events: &[HrEvent]) -> Timeline {
    let mut assignments: BTreeMap<String, Vec<Segment>> = BTreeMap::new();
    let mut t = Timeline::default();
    for e in events {
        match &e.body {
            EventBody::Starter {
                assignment_id,
                hr_position,
                starts_at,
                ends_at,
                staff_kind,
            } => {
                t.left_at = None;
                assignments.insert(
                    assignment_id.clone(),
                    vec![Segment {
                        assignment_id: assignment_id.clone(),
                        hr_position: hr_position.clone(),
                        starts_at: *starts_at,
                        ends_at: starter_end(*staff_kind, *starts_at, *ends_at),
                        source_event: e.event_id.clone(),
                    }],
                );
            }
            EventBody::AssignmentChange {
                assignment_id,
                effective_from,
                hr_position,
                ends_at,
            } => {
                let segments = assignments.entry(assignment_id.clone()).or_default();
                if segments.is_empty() && hr_position.is_none() {
                    t.orphan_changes.push(e.event_id.clone());
                    continue;
                }
                change(
                    segments,
                    &e.event_id,
                    *effective_from,
                    hr_position.as_ref(),
                    *ends_at,
                );
                for s in segments.iter_mut().filter(|s| s.assignment_id.is_empty()) {
                    s.assignment_id = assignment_id.clone();
                }
                if let Some(left) = t.left_at {
                    clip(segments, left);
                }
            }
            EventBody::Leaver { leaving_at } => {
                t.left_at = Some(*leaving_at);
                for segments in assignments.values_mut() {
                    clip(segments, *leaving_at);
                }
            }
            EventBody::DetailsChange(d) => merge(&mut t.details, d),
            EventBody::IdentityLink { uuid } => t.linked_uuid = Some(uuid.clone()),
        }
    }
    t.segments = assignments
        .into_values()
        .flatten()
        .filter(|s| s.ends_at.is_none_or(|e| e > s.starts_at))
        .collect();
    t
}

/// Sorts events into the order they apply in: recorded time, then event id.
pub fn in_recorded_order(events: &mut [HrEvent]) {
    events.sort_by(|a, b| (a.recorded_at, &a.event_id).cmp(&(b.recorded_at, &b.event_id)));
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: UnixTime = 1_800_000_000;

    fn ev(id: &str, at: UnixTime, body: EventBody) -> HrEvent {
        HrEvent {
            event_id: id.into(),
            org_code: "RX1".into(),
            person_id: "P1".into(),
            recorded_at: at,
            body,
        }
    }

    fn starter(
        id: &str,
        at: UnixTime,
        position: &str,
        starts: UnixTime,
        kind: StaffKind,
    ) -> HrEvent {
        ev(
            id,
            at,
            EventBody::Starter {
                assignment_id: "A1".into(),
                hr_position: position.into(),
                starts_at: starts,
                ends_at: None,
                staff_kind: kind,
            },
        )
    }

    fn mover(id: &str, at: UnixTime, position: &str, from: UnixTime) -> HrEvent {
        ev(
            id,
            at,
            EventBody::AssignmentChange {
                assignment_id: "A1".into(),
                effective_from: from,
                hr_position: Some(position.into()),
                ends_at: None,
            },
        )
    }

    fn stretches(t: &Timeline) -> Vec<(&str, UnixTime, Option<UnixTime>)> {
        t.segments
            .iter()
            .map(|s| (s.hr_position.as_str(), s.starts_at, s.ends_at))
            .collect()
    }

    #[test]
    fn a_mover_ends_the_old_position_where_the_new_one_starts() {
        let t = fold(&[
            starter("e1", T0, "NURSE", T0, StaffKind::Employee),
            mover("e2", T0 + 10, "SISTER", T0 + 30 * DAY),
        ]);
        assert_eq!(
            stretches(&t),
            vec![
                ("NURSE", T0, Some(T0 + 30 * DAY)),
                ("SISTER", T0 + 30 * DAY, None)
            ]
        );
        assert_eq!(t.segments[1].source_event, "e2");
    }

    #[test]
    fn arrival_order_does_not_matter() {
        let events = vec![
            starter("e1", T0, "NURSE", T0, StaffKind::Employee),
            mover("e2", T0 + 10, "SISTER", T0 + 30 * DAY),
            ev(
                "e3",
                T0 + 20,
                EventBody::Leaver {
                    leaving_at: T0 + 60 * DAY,
                },
            ),
        ];
        let in_order = fold(&events);
        let mut shuffled = vec![events[2].clone(), events[0].clone(), events[1].clone()];
        in_recorded_order(&mut shuffled);
        assert_eq!(fold(&shuffled), in_order);
        assert_eq!(in_order.segments[1].ends_at, Some(T0 + 60 * DAY));
    }

    #[test]
    fn a_leaver_cuts_every_stretch_and_a_later_starter_rehires() {
        let left = fold(&[
            starter("e1", T0, "NURSE", T0, StaffKind::Employee),
            ev("e2", T0 + 10, EventBody::Leaver { leaving_at: T0 + 5 }),
        ]);
        assert_eq!(stretches(&left), vec![("NURSE", T0, Some(T0 + 5))]);
        assert_eq!(left.left_at, Some(T0 + 5));
        let rehired = fold(&[
            starter("e1", T0, "NURSE", T0, StaffKind::Employee),
            ev("e2", T0 + 10, EventBody::Leaver { leaving_at: T0 + 5 }),
            ev(
                "e3",
                T0 + 20,
                EventBody::Starter {
                    assignment_id: "A2".into(),
                    hr_position: "NURSE".into(),
                    starts_at: T0 + DAY,
                    ends_at: None,
                    staff_kind: StaffKind::Employee,
                },
            ),
        ]);
        assert_eq!(rehired.left_at, None);
        assert_eq!(
            stretches(&rehired),
            vec![("NURSE", T0, Some(T0 + 5)), ("NURSE", T0 + DAY, None)],
            "the old stretch stays ended"
        );
    }

    #[test]
    fn a_leaver_before_the_start_leaves_nothing() {
        let t = fold(&[
            starter("e1", T0, "NURSE", T0 + DAY, StaffKind::Employee),
            ev("e2", T0 + 10, EventBody::Leaver { leaving_at: T0 }),
        ]);
        assert!(t.segments.is_empty());
    }

    #[test]
    fn contractors_and_partners_get_their_terms() {
        let c = fold(&[starter("e1", T0, "LOCUM", T0, StaffKind::Contractor)]);
        assert_eq!(c.segments[0].ends_at, Some(T0 + 91 * DAY));
        let p = fold(&[ev(
            "e1",
            T0,
            EventBody::Starter {
                assignment_id: "A1".into(),
                hr_position: "GP".into(),
                starts_at: T0,
                ends_at: Some(T0 + 800 * DAY),
                staff_kind: StaffKind::InterOrg,
            },
        )]);
        assert_eq!(
            p.segments[0].ends_at,
            Some(T0 + 365 * DAY),
            "capped at 12 months"
        );
    }

    #[test]
    fn a_new_end_date_keeps_the_position() {
        let t = fold(&[
            starter("e1", T0, "LOCUM", T0, StaffKind::Contractor),
            ev(
                "e2",
                T0 + 10,
                EventBody::AssignmentChange {
                    assignment_id: "A1".into(),
                    effective_from: T0 + DAY,
                    hr_position: None,
                    ends_at: Some(T0 + 200 * DAY),
                },
            ),
        ]);
        assert_eq!(stretches(&t), vec![("LOCUM", T0, Some(T0 + 200 * DAY))]);
    }

    #[test]
    fn a_new_end_date_from_the_day_of_a_move_keeps_the_new_position() {
        let t = fold(&[
            starter("e1", T0, "NURSE", T0, StaffKind::Employee),
            mover("e2", T0 + 10, "SISTER", T0 + DAY),
            ev(
                "e3",
                T0 + 20,
                EventBody::AssignmentChange {
                    assignment_id: "A1".into(),
                    effective_from: T0 + DAY,
                    hr_position: None,
                    ends_at: Some(T0 + 90 * DAY),
                },
            ),
        ]);
        assert_eq!(
            stretches(&t),
            vec![
                ("NURSE", T0, Some(T0 + DAY)),
                ("SISTER", T0 + DAY, Some(T0 + 90 * DAY))
            ]
        );
    }

    #[test]
    fn a_move_from_the_first_day_replaces_the_first_position() {
        let t = fold(&[
            starter("e1", T0, "NURSE", T0, StaffKind::Employee),
            mover("e2", T0 + 10, "SISTER", T0),
        ]);
        assert_eq!(stretches(&t), vec![("SISTER", T0, None)]);
    }

    #[test]
    fn a_change_without_its_starter_applies_alone_or_waits() {
        let alone = fold(&[mover("e2", T0 + 10, "SISTER", T0 + DAY)]);
        assert_eq!(stretches(&alone), vec![("SISTER", T0 + DAY, None)]);
        assert_eq!(alone.segments[0].assignment_id, "A1");
        let waits = fold(&[ev(
            "e2",
            T0,
            EventBody::AssignmentChange {
                assignment_id: "A1".into(),
                effective_from: T0,
                hr_position: None,
                ends_at: Some(T0 + DAY),
            },
        )]);
        assert!(waits.segments.is_empty());
        assert_eq!(waits.orphan_changes, vec!["e2".to_string()]);
    }

    #[test]
    fn details_merge_and_the_latest_link_wins() {
        let t = fold(&[
            ev(
                "e1",
                T0,
                EventBody::IdentityLink {
                    uuid: "555000000001".into(),
                },
            ),
            ev(
                "e2",
                T0 + 1,
                EventBody::DetailsChange(HrDetails {
                    family_name: Some("Smith".into()),
                    email: Some("a@nhs.net".into()),
                    ..Default::default()
                }),
            ),
            ev(
                "e3",
                T0 + 2,
                EventBody::DetailsChange(HrDetails {
                    family_name: Some("Jones".into()),
                    ..Default::default()
                }),
            ),
            ev(
                "e4",
                T0 + 3,
                EventBody::IdentityLink {
                    uuid: "555000000002".into(),
                },
            ),
        ]);
        let d = t.details.unwrap();
        assert_eq!(d.family_name.as_deref(), Some("Jones"));
        assert_eq!(d.email.as_deref(), Some("a@nhs.net"));
        assert_eq!(t.linked_uuid.as_deref(), Some("555000000002"));
    }
}
