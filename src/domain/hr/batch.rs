//! Applying a page of people at once: their records, events and links, and the identities they
//! are linked to, are read in a few queries per hundred people instead of five per person; each
//! person is then planned and written as `apply.rs` does one (their own guarded set, committed
//! side by side so the group commit shares transactions). A person whose version moved
//! meanwhile goes through the one-person path, which reads again and retries.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::StreamExt;

use super::apply::{Identities, Loaded, MapCache, PersonOutcome, Plan};
use crate::domain::provider::{Provider, ServiceError};
use crate::model::hr::InboxEvent;

/// People planned and committed side by side.
const IN_FLIGHT: usize = 32;

impl Provider {
    /// Applies each of `people` (organisation, HR person id); their outcomes, in no set order.
    pub async fn apply_hr_people(
        &self,
        people: &[(String, String)],
        maps: &MapCache,
    ) -> Result<Vec<PersonOutcome>, ServiceError> {
        let mut by_org: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (org, person) in people {
            by_org.entry(org).or_default().push(person.clone());
        }
        let mut loaded = Vec::new();
        for (org, ids) in by_org {
            loaded.extend(self.load_hr_people(org, &ids).await?);
        }
        let ids = self.identities_of(&loaded).await?;
        let ids = &ids;
        let results: Vec<Result<PersonOutcome, ServiceError>> = futures::stream::iter(loaded)
            .map(|l| async move { self.apply_loaded(l, ids, maps).await })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        results.into_iter().collect()
    }

    async fn apply_loaded(
        &self,
        loaded: Loaded,
        ids: &Identities,
        maps: &MapCache,
    ) -> Result<PersonOutcome, ServiceError> {
        let (org, person_id) = (
            loaded.person.org_code.clone(),
            loaded.person.person_id.clone(),
        );
        let Plan {
            writes,
            outcome,
            person,
        } = self.plan_hr_person(loaded, ids, maps).await?;
        if self.db.commit_guarded(writes).await?.is_none() {
            return self.apply_hr_person(&org, &person_id, maps).await;
        }
        self.after_hr_apply(&person, &outcome).await?;
        Ok(outcome)
    }

    async fn load_hr_people(&self, org: &str, ids: &[String]) -> Result<Vec<Loaded>, ServiceError> {
        let (people, events, links) = self.db.hr_people_in(org, ids).await?;
        let mut inbox: HashMap<String, Vec<InboxEvent>> = HashMap::new();
        for e in events {
            inbox.entry(e.raw.person_id.clone()).or_default().push(e);
        }
        let mut gave: HashMap<String, Vec<_>> = HashMap::new();
        for (person, link) in links {
            gave.entry(person).or_default().push(link);
        }
        Ok(people
            .into_iter()
            .map(|person| Loaded {
                inbox: inbox.remove(&person.person_id).unwrap_or_default(),
                links: gave.remove(&person.person_id).unwrap_or_default(),
                person,
            })
            .collect())
    }

    /// The identities the people are (or their events say they are) linked to.
    async fn identities_of(&self, loaded: &[Loaded]) -> Result<Identities, ServiceError> {
        let mut uuids: BTreeSet<String> = BTreeSet::new();
        for l in loaded {
            uuids.extend(l.person.user_uuid.iter().cloned());
            uuids.extend(l.inbox.iter().filter_map(|e| e.raw.uuid.clone()));
        }
        let uuids: Vec<String> = uuids.into_iter().collect();
        let (users, details) = self.db.users_with_details(&uuids).await?;
        let mut ids = Identities {
            users: uuids.into_iter().map(|u| (u, None)).collect(),
            details: details.into_iter().collect(),
        };
        for u in users {
            ids.details.entry(u.uuid.clone()).or_default();
            ids.users.insert(u.uuid.clone(), Some(u));
        }
        Ok(ids)
    }
}
