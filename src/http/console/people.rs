//! Console pages about people: finding them, registering and verifying an identity, a
//! person's record, and changing their status. Each POST handler is a [`StaffForm`] and one
//! domain call; success goes back to the record (POST/redirect/GET) with a fixed notice.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use minijinja::context;
use serde::Deserialize;

use super::forms::{Field, FormPage};
use super::{base, forbidden, page, refused, to_record, Staff, StaffForm};
use crate::domain::ra::{DetailsChange, Document, NewIdentity, Permission, Verification};
use crate::http::AppState;
use crate::model::audit::AuditFilter;
use crate::model::identity::UserStatus;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ra/people", get(search))
        .route("/ra/people/new", get(register_form).post(register))
        .route("/ra/people/{uuid}", get(record))
        .route("/ra/people/{uuid}/verify", get(verify_form).post(verify))
        .route(
            "/ra/people/{uuid}/details",
            get(details_form).post(change_details),
        )
        .route("/ra/people/{uuid}/photo", get(photo).post(upload_photo))
        .route("/ra/people/{uuid}/photo/new", get(photo_form))
        .route(
            "/ra/people/{uuid}/status/{action}",
            get(status_form).post(change_status),
        )
}

/// The notice a finished task leaves on the record (fixed texts: nothing from the query is
/// echoed).
fn notice(done: &str) -> Option<&'static str> {
    Some(match done {
        "registered" => {
            "Identity registered. Check the person's documents next (Record an identity check)."
        }
        "verified" => "Identity check recorded.",
        "details" => "Details changed.",
        "photo" => "Photograph recorded.",
        "suspended" => "Identity suspended. Every session and token has ended.",
        "reinstated" => "Identity reinstated.",
        "closed" => "Identity closed. Every session and token has ended.",
        "assigned" => "Position assigned.",
        "ended" => "Assignment ended.",
        "revoked" => "Authenticator revoked. The sessions it opened have ended.",
        "card-suspended" => "Suspended. It no longer signs in, and the sessions it opened have ended; unlock it when it is found or its PIN is reset.",
        "card-unlocked" => "Unlocked: it signs in again.",
        "bound" => "Smartcard bound.",
        "tac-issued" => "Temporary access card issued.",
        "tac-returned" => "TAC return recorded. The card is locked and its sessions have ended.",
        "ra-role" => "RA role granted.",
        _ => return None,
    })
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

async fn search(
    State(app): State<AppState>,
    staff: Staff,
    Query(query): Query<SearchQuery>,
) -> Response {
    let q = query.q.trim();
    let (found, error) = if q.is_empty() {
        (None, None)
    } else {
        match app.provider.admin_search(&staff.user.caller, q).await {
            Ok(list) => (Some(list.identities), None),
            Err(crate::domain::ra::AdminError::Invalid(m))
            | Err(crate::domain::ra::AdminError::Forbidden(m)) => (None, Some(m)),
            Err(e) => return refused(&app, &staff, e),
        }
    };
    page(
        &app,
        &staff,
        "ra/people.html",
        context! { title => "Find a person", q => q, found => found, error => error },
    )
}

fn identity_fields() -> Vec<Field> {
    vec![
        Field::text("title", "Title").hint("For example Dr, Mr, Ms"),
        Field::text("given_name", "Given name").required(),
        Field::text("middle_names", "Middle names"),
        Field::text("family_name", "Family name").required(),
        Field::text("email", "Work email address"),
        Field::date("date_of_birth", "Date of birth"),
        Field::text("ni_number", "National Insurance number").hint("For example AB 12 34 56 C"),
        Field::text("work_phone", "Work phone number"),
    ]
}

fn register_page(app: &AppState) -> FormPage {
    FormPage::new(
        "Register a new identity",
        format!("{}/people/new", base(app)),
        "Register identity",
        format!("{}/", base(app)),
    )
    .intro("Record the person as their identity documents show them. careid checks for an existing identity first (same NI number, or same name and date of birth): a person has one Care Identity for life.")
    .fields(identity_fields())
}

async fn register_form(State(app): State<AppState>, staff: Staff) -> Response {
    if !staff.may(Permission::CreateIdentity) {
        return refused(&app, &staff, forbidden("register identities"));
    }
    register_page(&app).render(&app, &staff)
}

async fn register(State(app): State<AppState>, StaffForm { staff, form }: StaffForm) -> Response {
    let mut page = register_page(&app).refill(&form);
    if !form.get("not_a_duplicate_because").is_empty() || !form.get("duplicates_shown").is_empty() {
        page.fields
            .push(override_field().value(form.get("not_a_duplicate_because")));
        page.fields.push(Field::hidden("duplicates_shown", "1"));
    }
    if !page.check_required() {
        return page.render(&app, &staff);
    }
    let new = NewIdentity {
        title: form.opt("title"),
        given_name: form.get("given_name").into(),
        middle_names: form.opt("middle_names"),
        family_name: form.get("family_name").into(),
        email: form.opt("email"),
        date_of_birth: form.opt("date_of_birth"),
        ni_number: form.opt("ni_number"),
        work_phones: form.opt("work_phone").into_iter().collect(),
        not_a_duplicate_because: form.opt("not_a_duplicate_because"),
    };
    let p = &app.provider;
    let caller = &staff.user.caller;
    let duplicates = p.admin_likely_duplicates(caller, &new).await;
    match p.admin_create_identity(caller, new).await {
        Ok(created) => to_record(&app, &created.identity.uuid, "registered"),
        Err(crate::domain::ra::AdminError::Conflict(_)) if duplicates.is_ok() => {
            let mut page = register_page(&app).refill(&form);
            page.warnings = duplicates
                .unwrap_or_default()
                .iter()
                .map(|d| {
                    format!(
                        "{} {} (UUID {}, {}): open their record to link this person to it instead.",
                        d.given_name, d.family_name, d.uuid, d.status
                    )
                })
                .collect();
            page.intro.push("This may be someone who already has a Care Identity. If it is the same person, do not register them again: open their record and give them a position at your organisation. If it is a different person, say why below.".into());
            page.fields.push(override_field());
            page.fields.push(Field::hidden("duplicates_shown", "1"));
            page.error_at(
                "not_a_duplicate_because",
                "This may be a person who already has a Care Identity: open their record, or say why this is a different person",
            )
            .render(&app, &staff)
        }
        Err(crate::domain::ra::AdminError::Invalid(m)) => page.error(&m).render(&app, &staff),
        Err(e) => refused(&app, &staff, e),
    }
}

fn override_field() -> Field {
    Field::textarea("not_a_duplicate_because", "Why this is a different person")
        .hint("Recorded in the audit trail, for example: different NI number seen on the P60")
}

#[derive(Deserialize)]
struct RecordQuery {
    done: Option<String>,
}

async fn record(
    State(app): State<AppState>,
    staff: Staff,
    Path(uuid): Path<String>,
    Query(q): Query<RecordQuery>,
) -> Response {
    let p = &app.provider;
    let caller = &staff.user.caller;
    let person = match p.admin_get_identity(caller, &uuid).await {
        Ok(r) => r,
        Err(e @ crate::domain::ra::AdminError::Forbidden(_)) => {
            return match p.admin_association_candidate(caller, &uuid).await {
                Ok(Some(found)) => page(
                    &app,
                    &staff,
                    "ra/associate.html",
                    context! { title => "Associate with your organisation", person => found },
                ),
                _ => refused(&app, &staff, e),
            };
        }
        Err(e) => return refused(&app, &staff, e),
    };
    let authenticators = match p.admin_list_authenticators(caller, &uuid).await {
        Ok(a) => a.authenticators,
        Err(e) => return refused(&app, &staff, e),
    };
    let tacs = match p.admin_list_tacs(caller, &uuid).await {
        Ok(t) => t.tacs,
        Err(e) => return refused(&app, &staff, e),
    };
    let history = if staff.may(Permission::ReadAudit) {
        let filter = AuditFilter {
            person: Some(uuid.clone()),
            limit: 20,
            ..Default::default()
        };
        match p.admin_audit_events(caller, filter, false).await {
            Ok(t) => Some(t.events),
            Err(e) => return refused(&app, &staff, e),
        }
    } else {
        None
    };
    let own = caller.uuid == uuid;
    let has_photo = p.photo_of(caller, &uuid).await.is_ok();
    page(
        &app,
        &staff,
        "ra/person.html",
        context! {
            title => format!("{} {}", person.identity.given_name, person.identity.family_name),
            person => person, authenticators => authenticators, tacs => tacs, history => history,
            notice => q.done.as_deref().and_then(notice), own => own, now => p.now(),
            can_verify => staff.may(Permission::VerifyIdentity) && !own,
            can_edit => staff.may(Permission::CreateIdentity) && !own,
            has_photo => has_photo,
            can_status => staff.may(Permission::ChangeStatus) && !own,
            can_assign => staff.may(Permission::AssignPositions) && !own,
            can_cards => staff.may(Permission::ManageSmartcards) && !own,
            can_authenticators => staff.may(Permission::ManageAuthenticators) && !own,
            can_tac => staff.may(Permission::IssueTac) && !own,
            can_grant => staff.may(Permission::AssignRaRoles) && !own,
        },
    )
}

fn photo_page(app: &AppState, uuid: &str) -> FormPage {
    let mut page = FormPage::new(
        "Record a photograph",
        format!("{}/people/{uuid}/photo", base(app)),
        "Record photograph",
        format!("{}/people/{uuid}", base(app)),
    )
    .intro("Take the photograph to the passport standard: face and shoulders, a plain light background, even lighting. It is shown to RA staff for the likeness check when a temporary access card is issued, and never sent to applications. Delete any local copy once it is recorded.")
    .fields(vec![Field::image("photo", "Photograph")
        .required()
        .hint("A JPEG or PNG of at most 48 KB")]);
    page.multipart = true;
    page
}

async fn photo_form(
    State(app): State<AppState>,
    staff: Staff,
    Path(uuid): Path<String>,
) -> Response {
    photo_page(&app, &uuid).render(&app, &staff)
}

const UNREADABLE: &str = "The upload could not be read: send a JPEG or PNG of at most 48 KB";

async fn upload_photo(
    State(app): State<AppState>,
    staff: Staff,
    Path(uuid): Path<String>,
    headers: axum::http::HeaderMap,
    multipart: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let rid = crate::http::params::request_id(&headers);
    let page = photo_page(&app, &uuid);
    let Ok(mut multipart) = multipart else {
        return page.error_at("photo", UNREADABLE).render(&app, &staff);
    };
    let (mut csrf, mut image) = (String::new(), None);
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => match field.name() {
                Some("csrf") => csrf = field.text().await.unwrap_or_default(),
                Some("photo") => {
                    let content_type = field.content_type().unwrap_or_default().to_string();
                    match field.bytes().await {
                        Ok(b) if !b.is_empty() => image = Some((content_type, b)),
                        Ok(_) => {}
                        Err(_) => return page.error_at("photo", UNREADABLE).render(&app, &staff),
                    }
                }
                _ => {}
            },
            Ok(None) => break,
            Err(_) => return page.error_at("photo", UNREADABLE).render(&app, &staff),
        }
    }
    if !crate::domain::secrets::constant_time_eq(&csrf, &staff.user.csrf) {
        return super::csrf_refused(&app, &rid);
    }
    let Some((content_type, bytes)) = image else {
        return page
            .error_at("photo", "Choose the photograph to record")
            .render(&app, &staff);
    };
    use base64::Engine;
    let photo = crate::domain::ra::photos::NewPhoto {
        content_type,
        image_base64: base64::engine::general_purpose::STANDARD.encode(&bytes),
    };
    let p = &app.provider;
    match p.admin_record_photo(&staff.user.caller, &uuid, photo).await {
        Ok(_) => to_record(&app, &uuid, "photo"),
        Err(crate::domain::ra::AdminError::Invalid(m)) => {
            page.error_at("photo", &m).render(&app, &staff)
        }
        Err(e) => refused(&app, &staff, e),
    }
}

/// The photograph itself (a JPEG or PNG whose bytes were checked when it was recorded), never
/// cached.
async fn photo(State(app): State<AppState>, staff: Staff, Path(uuid): Path<String>) -> Response {
    use axum::http::{header, HeaderValue};
    use axum::response::IntoResponse;
    match app.provider.photo_of(&staff.user.caller, &uuid).await {
        Ok(p) => {
            let mut r = p.bytes.into_response();
            let h = r.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&p.content_type) {
                h.insert(header::CONTENT_TYPE, v);
            }
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => refused(&app, &staff, e),
    }
}

/// The registration fields of the details form: (field, body, label).
const REGISTRATIONS: [(&str, &str, &str); 8] = [
    ("reg_gmc", "gmc", "GMC number"),
    ("reg_nmc", "nmc", "NMC PIN"),
    ("reg_gphc", "gphc", "GPhC number"),
    ("reg_gdc", "gdc", "GDC number"),
    ("reg_gmp", "gmp", "GMP (GP) number"),
    ("reg_gdp", "gdp", "GDP number"),
    ("reg_rcn", "rcn", "RCN number"),
    ("reg_consultant", "consultant", "Consultant code"),
];

fn details_page(
    app: &AppState,
    uuid: &str,
    record: &crate::domain::ra::answers::IdentityRecord,
) -> FormPage {
    let i = &record.identity;
    let d = record.personal_details.clone().unwrap_or_default();
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut fields = vec![
        Field::text("title", "Title").value(&text(&i.title)),
        Field::text("given_name", "Given name").required().value(&i.given_name),
        Field::text("middle_names", "Middle names").value(&text(&i.middle_names)),
        Field::text("family_name", "Family name").required().value(&i.family_name),
        Field::textarea("name_change_evidence", "Evidence for a change of name")
            .hint("Required when the given or family name changes, for example: marriage certificate seen. The person's smartcard shows the old name, so it is revoked and a new card is needed."),
        Field::text("email", "Work email address").value(&text(&i.email)),
        Field::date("date_of_birth", "Date of birth").value(&text(&d.date_of_birth)),
        Field::text("ni_number", "National Insurance number").value(&text(&d.ni_number)),
        Field::text("work_phone", "Work phone number").value(&d.work_phones.first().cloned().unwrap_or_default()),
    ];
    for (name, body, label) in REGISTRATIONS {
        let value = record
            .professional_registrations
            .get(body)
            .cloned()
            .unwrap_or_default();
        fields.push(Field::text(name, label).value(&value));
    }
    FormPage::new(
        "Change personal details",
        format!("{}/people/{uuid}/details", base(app)),
        "Save changes",
        format!("{}/people/{uuid}", base(app)),
    )
    .intro("Change what the person's documents or their professional registers show. Professional registration numbers are released to applications that ask for professionalmemberships.")
    .fields(fields)
}

async fn details_form(
    State(app): State<AppState>,
    staff: Staff,
    Path(uuid): Path<String>,
) -> Response {
    if !staff.may(Permission::CreateIdentity) {
        return refused(&app, &staff, forbidden("change personal details"));
    }
    match app
        .provider
        .admin_get_identity(&staff.user.caller, &uuid)
        .await
    {
        Ok(record) => details_page(&app, &uuid, &record).render(&app, &staff),
        Err(e) => refused(&app, &staff, e),
    }
}

async fn change_details(
    State(app): State<AppState>,
    Path(uuid): Path<String>,
    StaffForm { staff, form }: StaffForm,
) -> Response {
    let p = &app.provider;
    let caller = &staff.user.caller;
    let record = match p.admin_get_identity(caller, &uuid).await {
        Ok(r) => r,
        Err(e) => return refused(&app, &staff, e),
    };
    let mut page = details_page(&app, &uuid, &record).refill(&form);
    if !page.check_required() {
        return page.render(&app, &staff);
    }
    let registrations = REGISTRATIONS
        .iter()
        .filter_map(|(name, body, _)| form.opt(name).map(|n| (body.to_string(), n)))
        .collect();
    let change = DetailsChange {
        title: Some(form.get("title").into()),
        given_name: Some(form.get("given_name").into()),
        middle_names: Some(form.get("middle_names").into()),
        family_name: Some(form.get("family_name").into()),
        email: Some(form.get("email").into()),
        date_of_birth: Some(form.get("date_of_birth").into()),
        ni_number: Some(form.get("ni_number").into()),
        work_phones: Some(form.opt("work_phone").into_iter().collect()),
        name_change_evidence: form.opt("name_change_evidence"),
        professional_registrations: Some(registrations),
    };
    match p.admin_update_details(caller, &uuid, change).await {
        Ok(_) => to_record(&app, &uuid, "details"),
        Err(crate::domain::ra::AdminError::Invalid(m)) => page.error(&m).render(&app, &staff),
        Err(e) => refused(&app, &staff, e),
    }
}

const DOCUMENT_KINDS: &[(&str, bool)] = &[
    ("passport", true),
    ("photocard driving licence", true),
    ("national identity card", true),
    ("biometric residence permit", true),
    ("birth certificate", false),
    ("utility bill", false),
    ("bank or building society statement", false),
    ("council tax bill", false),
    ("P45 or P60", false),
];

fn verify_page(app: &AppState, uuid: &str) -> FormPage {
    let kinds = || {
        let mut c = vec![(String::new(), "Not used".to_string())];
        c.extend(DOCUMENT_KINDS.iter().map(|(k, photo)| {
            (
                k.to_string(),
                format!("{k}{}", if *photo { " (photographic)" } else { "" }),
            )
        }));
        c
    };
    let levels = vec![
        (
            "3".to_string(),
            "Level 3: three documents, one photographic (needed for smartcards)".to_string(),
        ),
        ("2".to_string(), "Level 2".to_string()),
        ("1".to_string(), "Level 1".to_string()),
    ];
    FormPage::new(
        "Record an identity check",
        format!("{}/people/{uuid}/verify", base(app)),
        "Record the check",
        format!("{}/people/{uuid}", base(app)),
    )
    .intro("Check the original documents face to face, with the person present. Record only the kind of each document and, if you wish, the last four characters of its number.")
    .fields(vec![
        Field::select("level", "Identity assurance level reached (GPG45)", levels).required(),
        Field::select("doc1_kind", "First document", kinds()).required(),
        Field::text("doc1_last4", "First document: last four characters of its number"),
        Field::select("doc2_kind", "Second document", kinds()),
        Field::text("doc2_last4", "Second document: last four characters"),
        Field::select("doc3_kind", "Third document", kinds()),
        Field::text("doc3_last4", "Third document: last four characters"),
    ])
}

async fn verify_form(
    State(app): State<AppState>,
    staff: Staff,
    Path(uuid): Path<String>,
) -> Response {
    verify_page(&app, &uuid).render(&app, &staff)
}

async fn verify(
    State(app): State<AppState>,
    Path(uuid): Path<String>,
    StaffForm { staff, form }: StaffForm,
) -> Response {
    let mut page = verify_page(&app, &uuid).refill(&form);
    if !page.check_required() {
        return page.render(&app, &staff);
    }
    let documents = ["doc1", "doc2", "doc3"]
        .iter()
        .filter_map(|d| {
            let kind = form.get(&format!("{d}_kind")).to_string();
            let photographic = DOCUMENT_KINDS.iter().any(|(k, p)| *k == kind && *p);
            (!kind.is_empty()).then(|| Document {
                kind,
                photographic,
                reference_last4: form.opt(&format!("{d}_last4")),
            })
        })
        .collect();
    let v = Verification {
        level: form.get("level").parse().unwrap_or(0),
        documents,
    };
    match app
        .provider
        .admin_verify_identity(&staff.user.caller, &uuid, v)
        .await
    {
        Ok(_) => to_record(&app, &uuid, "verified"),
        Err(crate::domain::ra::AdminError::Invalid(m)) => page.error(&m).render(&app, &staff),
        Err(e) => refused(&app, &staff, e),
    }
}

fn status_page(app: &AppState, uuid: &str, action: &str) -> Option<FormPage> {
    let (title, submit, intro) = match action {
        "suspend" => ("Suspend this identity", "Suspend identity", "Suspending ends every session and token the person holds at once; they cannot sign in until reinstated."),
        "reinstate" => ("Reinstate this identity", "Reinstate identity", "The person can sign in again with their working authenticators."),
        "close" => ("Close this identity", "Close identity", "Closing is for a person who has left health and care for good. Every session and token ends at once."),
        _ => return None,
    };
    let page = FormPage::new(
        title,
        format!("{}/people/{uuid}/status/{action}", base(app)),
        submit,
        format!("{}/people/{uuid}", base(app)),
    )
    .intro(intro)
    .fields(vec![Field::textarea("reason", "Reason")
        .required()
        .hint("Recorded with the change")]);
    Some(if action == "reinstate" {
        page
    } else {
        page.danger()
    })
}

async fn status_form(
    State(app): State<AppState>,
    staff: Staff,
    Path((uuid, action)): Path<(String, String)>,
) -> Response {
    match status_page(&app, &uuid, &action) {
        Some(p) => p.render(&app, &staff),
        None => refused(
            &app,
            &staff,
            crate::domain::ra::AdminError::NotFound("no such action".into()),
        ),
    }
}

async fn change_status(
    State(app): State<AppState>,
    Path((uuid, action)): Path<(String, String)>,
    StaffForm { staff, form }: StaffForm,
) -> Response {
    let Some(page) = status_page(&app, &uuid, &action) else {
        return refused(
            &app,
            &staff,
            crate::domain::ra::AdminError::NotFound("no such action".into()),
        );
    };
    let (status, done) = match action.as_str() {
        "suspend" => (UserStatus::Suspended, "suspended"),
        "reinstate" => (UserStatus::Active, "reinstated"),
        _ => (UserStatus::Closed, "closed"),
    };
    if status == UserStatus::Closed {
        let back = format!("{}/people/{uuid}/status/close", base(&app));
        if let Some(r) = super::needs_fresh_sign_in(&app, &staff, &back) {
            return r;
        }
    }
    let mut page = page.refill(&form);
    if !page.check_required() {
        return page.render(&app, &staff);
    }
    let p = &app.provider;
    match p
        .admin_set_status(&staff.user.caller, &uuid, status, form.get("reason"))
        .await
    {
        Ok(_) => to_record(&app, &uuid, done),
        Err(crate::domain::ra::AdminError::Invalid(m)) => page.error(&m).render(&app, &staff),
        Err(e) => refused(&app, &staff, e),
    }
}
