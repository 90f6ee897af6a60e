//! Applying one HR person's events: fold them all (`timeline.rs`), work out the person-role
//! assignments their HR assignments should give, and write the difference with the events'
//! new states in one set, claimed by the person's version so two processes never both write.
//! After the write: a leaver whose date has come loses access at once, a re-hire gets back an
//! identity the feed suspended, and sessions acting in a role that has just ended are ended.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;
use tokio::sync::Mutex;

use super::timeline::{self, Timeline};
use crate::clock::UnixTime;
use crate::domain::provider::{Provider, ServiceError};
use crate::domain::secrets;
use crate::model::audit::AuditKind;
use crate::model::hr::{
    DetailChangeRequest, EventBody, FieldChange, HrDetails, HrEvent, HrPerson, HrRoleLink,
    InboxEvent, InboxState, PositionMap,
};
use crate::model::identity::{PersonalDetails, User, UserStatus};
use crate::model::rbac::{Assignment, Position};
use crate::store::WriteSet;

/// The actor the feed's changes are audited as.
pub const FEED_ACTOR: &str = "hr-feed";
/// How often a person's application is retried when another process wrote first.
const ATTEMPTS: usize = 8;
/// The status reason the feed writes when it suspends a leaver's identity; a re-hire reinstates
/// only an identity still suspended for this reason.
const LEAVER_REASON: &str = "left the organisation (HR feed)";

/// Position maps read during one batch or import (a map changed meanwhile is seen next time).
#[derive(Default)]
pub struct MapCache(Mutex<HashMap<(String, String), Option<Mapped>>>);

/// A mapping, the position it names, and whether that position is retired.
type Mapped = (PositionMap, Position, bool);

/// What applying a person did.
#[derive(Debug, Default, Clone)]
pub struct PersonOutcome {
    pub applied: Vec<String>,
    pub attention: Vec<(String, String)>,
    pub granted: Vec<String>,
    pub ended: Vec<String>,
    /// Still pending: another process kept writing first (the scheduler tries again).
    pub pending: Vec<String>,
}

/// One stretch as it should be stored.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct LinkKey {
    assignment_id: String,
    starts_at: UnixTime,
    position_id: String,
    user_uuid: String,
}

pub(super) struct Plan {
    pub(super) writes: WriteSet,
    pub(super) outcome: PersonOutcome,
    pub(super) person: HrPerson,
}

/// What planning a person reads: their record, all their events and what their HR assignments
/// gave. Read for one person, or for a page of people at once (`batch.rs`).
pub(super) struct Loaded {
    pub(super) person: HrPerson,
    pub(super) inbox: Vec<InboxEvent>,
    pub(super) links: Vec<HrRoleLink>,
}

/// Identities and personal details read ahead for a page of people; a UUID not in `users` is
/// read when needed (`Some(None)`: read ahead, and there is no such identity).
#[derive(Default)]
pub(super) struct Identities {
    pub(super) users: HashMap<String, Option<User>>,
    pub(super) details: HashMap<String, PersonalDetails>,
}

fn checked_events(inbox: &[InboxEvent]) -> Vec<Result<HrEvent, String>> {
    inbox
        .iter()
        .map(|e| super::events::check(&e.raw).map_err(|r| format!("unreadable event: {r}")))
        .collect()
}

/// The fields where HR differs from the identity, and whether any is core (name, birth date).
pub fn differences(
    user: &User,
    details: &crate::model::identity::PersonalDetails,
    hr: &HrDetails,
) -> Vec<FieldChange> {
    let phones = &details.work_phones;
    let pairs: [(&str, Option<String>, &Option<String>); 9] = [
        ("title", user.title.clone(), &hr.title),
        ("given_name", Some(user.given_name.clone()), &hr.given_name),
        ("middle_names", user.middle_names.clone(), &hr.middle_names),
        (
            "family_name",
            Some(user.family_name.clone()),
            &hr.family_name,
        ),
        (
            "date_of_birth",
            details.date_of_birth.clone(),
            &hr.date_of_birth,
        ),
        ("ni_number", details.ni_number.clone(), &hr.ni_number),
        ("email", user.email.clone(), &hr.email),
        ("work_phone", phones.first().cloned(), &hr.work_phone),
        ("work_mobile", phones.get(1).cloned(), &hr.work_mobile),
    ];
    let same = |a: &Option<String>, b: &str| {
        a.as_deref().is_some_and(|a| {
            a.trim().eq_ignore_ascii_case(b.trim()) || a.replace(' ', "") == b.replace(' ', "")
        })
    };
    pairs
        .into_iter()
        .filter_map(|(field, current, proposed)| {
            let p = proposed.as_deref()?;
            (!same(&current, p)).then(|| FieldChange {
                field: field.into(),
                current,
                proposed: Some(p.to_string()),
            })
        })
        .collect()
}

pub fn is_core_change(changes: &[FieldChange]) -> bool {
    changes
        .iter()
        .any(|c| ["given_name", "family_name", "date_of_birth"].contains(&c.field.as_str()))
}

/// Writes the difference between the stored stretches and the desired ones.
fn reconcile_links(
    (org_code, person_id): (&str, &str),
    links: &[HrRoleLink],
    desired: &BTreeMap<LinkKey, (Option<UnixTime>, Position)>,
    now: UnixTime,
    writes: &mut WriteSet,
    outcome: &mut PersonOutcome,
) {
    let key_of = |l: &HrRoleLink| LinkKey {
        assignment_id: l.assignment_id.clone(),
        starts_at: l.starts_at,
        position_id: l.position_id.clone(),
        user_uuid: l.user_uuid.clone(),
    };
    let stored: BTreeMap<LinkKey, &HrRoleLink> = links.iter().map(|l| (key_of(l), l)).collect();
    for (key, (ends_at, position)) in desired {
        match stored.get(key) {
            Some(link) if link.ends_at == *ends_at => {}
            Some(link) => {
                let moved = HrRoleLink {
                    ends_at: *ends_at,
                    ..(*link).clone()
                };
                for id in &link.person_roleids {
                    writes.set_role_assignment_end(id, *ends_at);
                }
                writes.set_hr_link_end(org_code, person_id, &moved);
                if ends_at.is_some_and(|e| e <= now) && link.ends_at.is_none_or(|e| e > now) {
                    outcome.ended.extend(link.person_roleids.iter().cloned());
                }
            }
            None if ends_at.is_some_and(|e| e <= now) => {}
            None => {
                let ids = new_assignments(position, key, *ends_at, now, writes);
                outcome.granted.extend(ids.iter().cloned());
                writes.insert_hr_link(
                    org_code,
                    person_id,
                    &HrRoleLink {
                        assignment_id: key.assignment_id.clone(),
                        starts_at: key.starts_at,
                        position_id: key.position_id.clone(),
                        user_uuid: key.user_uuid.clone(),
                        ends_at: *ends_at,
                        person_roleids: ids,
                    },
                );
            }
        }
    }
    for (key, link) in &stored {
        if desired.contains_key(key) || link.ends_at.is_some_and(|e| e <= now) {
            continue;
        }
        let ended = HrRoleLink {
            ends_at: Some(link.starts_at.max(now)),
            ..(*link).clone()
        };
        for id in &link.person_roleids {
            writes.set_role_assignment_end(id, ended.ends_at);
        }
        writes.set_hr_link_end(org_code, person_id, &ended);
        outcome.ended.extend(link.person_roleids.iter().cloned());
    }
}

/// One assignment per access profile of the position (as an RA's assignment makes them), with
/// the person's membership of each profile's organisation.
fn new_assignments(
    position: &Position,
    key: &LinkKey,
    ends_at: Option<UnixTime>,
    now: UnixTime,
    writes: &mut WriteSet,
) -> Vec<String> {
    let mut ids = Vec::new();
    for (i, profile) in position.profiles.iter().enumerate() {
        writes.ensure_person_org(
            &key.user_uuid,
            &profile.org_code,
            &secrets::random_digits(12),
        );
        let a = Assignment {
            person_roleid: secrets::random_digits(12),
            user_uuid: key.user_uuid.clone(),
            position_id: position.id.clone(),
            profile_index: i as i64,
            org_code: profile.org_code.clone(),
            starts_at: key.starts_at,
            ends_at,
        };
        writes.insert_role_assignment(&a, now);
        ids.push(a.person_roleid);
    }
    ids
}

/// A details change becomes a request for an RA, listing only what differs.
fn queue_detail_change(
    writes: &mut WriteSet,
    e: &InboxEvent,
    d: &HrDetails,
    user: &User,
    details: &PersonalDetails,
    now: UnixTime,
) {
    let changes = differences(user, details, d);
    if changes.is_empty() {
        return;
    }
    writes.insert_detail_change(&DetailChangeRequest {
        id: uuid::Uuid::new_v4().to_string(),
        event_id: e.raw.event_id.clone(),
        org_code: e.raw.org_code.clone(),
        person_id: e.raw.person_id.clone(),
        user_uuid: user.uuid.clone(),
        core: is_core_change(&changes),
        changes,
        state: "pending".into(),
        received_at: now,
        decided_by: None,
        decided_at: None,
        note: None,
    });
}

impl Provider {
    /// Applies everything a person's events say, retrying when another process wrote first.
    pub async fn apply_hr_person(
        &self,
        org_code: &str,
        person_id: &str,
        maps: &MapCache,
    ) -> Result<PersonOutcome, ServiceError> {
        for _ in 0..ATTEMPTS {
            let Some(loaded) = self.load_hr_person(org_code, person_id).await? else {
                return Ok(PersonOutcome::default());
            };
            let plan = self
                .plan_hr_person(loaded, &Identities::default(), maps)
                .await?;
            let Plan {
                writes,
                outcome,
                person,
            } = plan;
            if self.db.commit_guarded(writes).await?.is_none() {
                continue;
            }
            self.after_hr_apply(&person, &outcome).await?;
            return Ok(outcome);
        }
        let pending = self
            .db
            .hr_events_of(org_code, person_id)
            .await?
            .into_iter()
            .filter(|e| e.state == InboxState::Pending)
            .map(|e| e.raw.event_id)
            .collect();
        Ok(PersonOutcome {
            pending,
            ..PersonOutcome::default()
        })
    }

    async fn mapped(
        &self,
        maps: &MapCache,
        org_code: &str,
        hr_position: &str,
    ) -> Result<Option<Mapped>, ServiceError> {
        let key = (org_code.to_string(), hr_position.to_string());
        if let Some(found) = maps.0.lock().await.get(&key) {
            return Ok(found.clone());
        }
        let found = match self.db.position_map(org_code, hr_position).await? {
            Some(m) => match self.db.position(&m.position_id).await? {
                Some(p) => {
                    let retired = self.db.position_standing(&p.id).await?.1.is_some();
                    Some((m, p, retired))
                }
                None => None,
            },
            None => None,
        };
        maps.0.lock().await.insert(key, found.clone());
        Ok(found)
    }

    async fn load_hr_person(
        &self,
        org_code: &str,
        person_id: &str,
    ) -> Result<Option<Loaded>, ServiceError> {
        let Some(person) = self.db.hr_person(org_code, person_id).await? else {
            return Ok(None);
        };
        Ok(Some(Loaded {
            person,
            inbox: self.db.hr_events_of(org_code, person_id).await?,
            links: self.db.hr_links_of(org_code, person_id).await?,
        }))
    }

    /// The identity the person is linked to, or why their events cannot apply.
    async fn linked_identity(
        &self,
        t: &Timeline,
        (org, person): (&str, &str),
        ids: &Identities,
    ) -> Result<Result<User, String>, ServiceError> {
        let Some(uuid) = &t.linked_uuid else {
            return Ok(Err(format!(
                "HR person {person} at {org} is not linked to a Care Identity: send an identity_link event"
            )));
        };
        let user = match ids.users.get(uuid) {
            Some(known) => known.clone(),
            None => self.db.user(uuid).await?,
        };
        Ok(match user {
            None => Err(format!(
                "there is no Care Identity {uuid}: correct the identity_link"
            )),
            Some(u) if u.status == UserStatus::Closed => {
                Err(format!("Care Identity {uuid} is closed: an RA must decide"))
            }
            Some(u) => Ok(u),
        })
    }

    /// What applying a person writes, from what was read; the set is guarded by the version
    /// read.
    pub(super) async fn plan_hr_person(
        &self,
        loaded: Loaded,
        ids: &Identities,
        maps: &MapCache,
    ) -> Result<Plan, ServiceError> {
        let Loaded {
            person: stored,
            inbox,
            links,
        } = loaded;
        let (org_code, person_id) = (stored.org_code.as_str(), stored.person_id.as_str());
        let now = self.now();
        let checked = checked_events(&inbox);
        let mut events: Vec<HrEvent> = checked
            .iter()
            .filter_map(|e| e.as_ref().ok().cloned())
            .collect();
        timeline::in_recorded_order(&mut events);
        let t = timeline::fold(&events);
        let identity = self.linked_identity(&t, (org_code, person_id), ids).await?;
        let mut attention: HashMap<String, String> = HashMap::new();
        for (e, c) in inbox.iter().zip(&checked) {
            if let Err(reason) = c {
                attention.insert(e.raw.event_id.clone(), reason.clone());
            }
        }
        for id in &t.orphan_changes {
            attention.insert(id.clone(), "a change to an assignment careid has no starter for: send the starter, or the change with its hr_position".into());
        }
        let mut desired: BTreeMap<LinkKey, (Option<UnixTime>, Position)> = BTreeMap::new();
        if let Ok(user) = &identity {
            for s in &t.segments {
                let past = s.ends_at.is_some_and(|e| e <= now);
                match self.mapped(maps, org_code, &s.hr_position).await? {
                    Some((_, position, false)) => {
                        let key = LinkKey {
                            assignment_id: s.assignment_id.clone(),
                            starts_at: s.starts_at,
                            position_id: position.id.clone(),
                            user_uuid: user.uuid.clone(),
                        };
                        desired.insert(key, (s.ends_at, position));
                    }
                    Some((m, _, true)) if !past => {
                        attention.insert(s.source_event.clone(), format!("HR position {} at {org_code} maps to position {}, which is retired: map it to a current position", s.hr_position, m.position_id));
                    }
                    None if !past => {
                        attention.insert(s.source_event.clone(), format!("HR position {} at {org_code} is not mapped to an access-control position: map it (PUT /admin/api/v1/hr/position-maps)", s.hr_position));
                    }
                    _ => {}
                }
            }
        }
        let mut writes = WriteSet::hr_person_claim(org_code, person_id, stored.version);
        let mut outcome = PersonOutcome::default();
        let mut transitions = Vec::new();
        reconcile_links(
            (org_code, person_id),
            &links,
            &desired,
            now,
            &mut writes,
            &mut outcome,
        );
        for (e, c) in inbox.iter().zip(&checked) {
            let id = &e.raw.event_id;
            let reason = attention
                .get(id)
                .cloned()
                .or_else(|| identity.as_ref().err().cloned());
            let state = if reason.is_some() {
                InboxState::Attention
            } else {
                InboxState::Applied
            };
            if state == InboxState::Attention {
                outcome
                    .attention
                    .push((id.clone(), reason.clone().unwrap_or_default()));
            } else {
                outcome.applied.push(id.clone());
            }
            if state == e.state && reason == e.reason {
                continue;
            }
            transitions.push(json!({ "event_id": id, "kind": e.raw.kind, "state": state.as_str(), "reason": reason }));
            writes.set_hr_event_state(id, state, reason.as_deref(), now);
            if let (
                InboxState::Applied,
                Ok(HrEvent {
                    body: EventBody::DetailsChange(d),
                    ..
                }),
                Ok(user),
            ) = (state, c, &identity)
            {
                let details = match ids.details.get(&user.uuid) {
                    Some(d) => d.clone(),
                    None => self.db.personal_details(&user.uuid).await?,
                };
                queue_detail_change(&mut writes, e, d, user, &details, now);
            }
        }
        let mut person = stored.clone();
        person.user_uuid = identity.as_ref().ok().map(|u| u.uuid.clone());
        if person.left_at != t.left_at {
            person.leaver_enforced_at = None;
        }
        person.left_at = t.left_at;
        person.details = t.details.clone();
        writes.update_hr_person(&person, now);
        let changed =
            !transitions.is_empty() || !outcome.granted.is_empty() || !outcome.ended.is_empty();
        if changed {
            writes.audit(self.audit_event(
                AuditKind::HrApplied,
                "success",
                Some(FEED_ACTOR),
                None,
                json!({ "org_code": org_code, "person_id": person_id, "uuid": person.user_uuid, "events": transitions, "granted": outcome.granted, "ended": outcome.ended, "left_at": person.left_at }),
            ));
        }
        Ok(Plan {
            writes,
            outcome,
            person,
        })
    }

    /// After a person's write: leavers, re-hires and roles that ended now.
    pub(super) async fn after_hr_apply(
        &self,
        person: &HrPerson,
        outcome: &PersonOutcome,
    ) -> Result<(), ServiceError> {
        let now = self.now();
        if let (Some(uuid), Some(left)) = (&person.user_uuid, person.left_at) {
            self.db
                .end_assignments_at_org(uuid, &person.org_code, left)
                .await?;
            if left <= now && person.leaver_enforced_at.is_none() {
                self.enforce_leaver(person, left).await?;
            }
        }
        if person.left_at.is_none() && person.suspended_identity {
            self.reinstate_rehire(person).await?;
        }
        for id in &outcome.ended {
            self.end_sessions_in_ended_role(id).await?;
        }
        Ok(())
    }

    /// A leaver whose date has come: every assignment at the organisation ends, every session
    /// and token ends through the lifecycle's one revocation path (relying parties get
    /// back-channel logouts), and an identity left with no access anywhere is suspended.
    pub(crate) async fn enforce_leaver(
        &self,
        person: &HrPerson,
        left: UnixTime,
    ) -> Result<(), ServiceError> {
        let Some(uuid) = &person.user_uuid else {
            return Ok(());
        };
        if !self
            .db
            .claim_hr_leaver(&person.org_code, &person.person_id, left, self.now())
            .await?
        {
            return Ok(());
        }
        let ended = self
            .db
            .end_assignments_at_org(uuid, &person.org_code, left)
            .await?;
        self.revoke_user(uuid, "leaver").await?;
        let now = self.now();
        let left_with_nothing = self.db.live_assignments(uuid, now).await?.is_empty();
        let mut suspended = false;
        if left_with_nothing {
            if let Some(user) = self.db.user(uuid).await? {
                if user.status == UserStatus::Active {
                    self.db
                        .change_user_status(uuid, UserStatus::Suspended, LEAVER_REASON, now)
                        .await?;
                    self.db
                        .set_hr_suspended_identity(&person.org_code, &person.person_id, true)
                        .await?;
                    suspended = true;
                }
            }
        }
        self.audit(
            AuditKind::HrLeaverEnforced,
            "success",
            Some(FEED_ACTOR),
            None,
            json!({ "org_code": person.org_code, "person_id": person.person_id, "uuid": uuid, "left_at": left, "assignments_ended": ended, "identity_suspended": suspended }),
        )
        .await
    }

    /// A re-hired person whose identity the feed suspended gets it back, unless an RA has
    /// changed its status since.
    async fn reinstate_rehire(&self, person: &HrPerson) -> Result<(), ServiceError> {
        let Some(uuid) = &person.user_uuid else {
            return Ok(());
        };
        let still_ours = self
            .db
            .user(uuid)
            .await?
            .is_some_and(|u| u.status == UserStatus::Suspended)
            && self.db.status_change(uuid).await?.0.as_deref() == Some(LEAVER_REASON);
        self.db
            .set_hr_suspended_identity(&person.org_code, &person.person_id, false)
            .await?;
        if still_ours {
            self.db
                .change_user_status(uuid, UserStatus::Active, "re-hired (HR feed)", self.now())
                .await?;
            self.audit(
                AuditKind::HrApplied,
                "reinstated",
                Some(FEED_ACTOR),
                None,
                json!({ "org_code": person.org_code, "person_id": person.person_id, "uuid": uuid }),
            )
            .await?;
        }
        Ok(())
    }
}
