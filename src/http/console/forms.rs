//! Accessible console forms, built from a list of fields: every input has a label (and a hint
//! tied to it with `aria-describedby`), errors are listed in a summary at the top whose links
//! move focus to the field, and each field repeats its own error. One template
//! (`templates/ra/form.html`) renders them all, so every task form behaves the same way.

use minijinja::context;
use serde::Serialize;

use super::{page_with_status, Staff};
use crate::http::AppState;
use axum::http::StatusCode;
use axum::response::Response;

#[derive(Debug, Clone, Serialize)]
pub struct Choice {
    pub value: String,
    pub label: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Field {
    pub name: &'static str,
    pub label: String,
    /// `text`, `date`, `number`, `email`, `select`, `textarea`, `checkbox`, `file` or `hidden`.
    pub kind: &'static str,
    pub hint: Option<String>,
    pub required: bool,
    pub value: String,
    pub choices: Vec<Choice>,
    pub error: Option<String>,
}

impl Field {
    fn new(kind: &'static str, name: &'static str, label: &str) -> Field {
        Field {
            name,
            label: label.into(),
            kind,
            hint: None,
            required: false,
            value: String::new(),
            choices: Vec::new(),
            error: None,
        }
    }
    pub fn text(name: &'static str, label: &str) -> Field {
        Field::new("text", name, label)
    }
    pub fn date(name: &'static str, label: &str) -> Field {
        Field::new("date", name, label)
    }
    pub fn number(name: &'static str, label: &str) -> Field {
        Field::new("number", name, label)
    }
    pub fn textarea(name: &'static str, label: &str) -> Field {
        Field::new("textarea", name, label)
    }
    /// A JPEG or PNG to upload.
    pub fn image(name: &'static str, label: &str) -> Field {
        Field::new("file", name, label)
    }
    pub fn checkbox(name: &'static str, label: &str) -> Field {
        Field::new("checkbox", name, label)
    }
    pub fn hidden(name: &'static str, value: &str) -> Field {
        Field::new("hidden", name, "").value(value)
    }
    pub fn select(name: &'static str, label: &str, choices: Vec<(String, String)>) -> Field {
        let mut f = Field::new("select", name, label);
        f.choices = choices
            .into_iter()
            .map(|(value, label)| Choice { value, label })
            .collect();
        f
    }
    pub fn required(mut self) -> Field {
        self.required = true;
        self
    }
    pub fn hint(mut self, hint: &str) -> Field {
        self.hint = Some(hint.into());
        self
    }
    pub fn value(mut self, value: &str) -> Field {
        self.value = value.into();
        self
    }
}

/// One task form: what it is for, its fields, and where it posts.
#[derive(Debug, Clone, Serialize)]
pub struct FormPage {
    pub title: String,
    /// Paragraphs above the form (who it is for, what will happen).
    pub intro: Vec<String>,
    pub action: String,
    pub submit: String,
    pub fields: Vec<Field>,
    /// Where "Cancel" goes.
    pub back: String,
    /// A destructive action: the button says so.
    pub danger: bool,
    /// Extra lines shown in a warning box (e.g. likely duplicates).
    pub warnings: Vec<String>,
    /// The form uploads a file (`multipart/form-data`).
    pub multipart: bool,
    /// An image shown above the fields, with its text alternative (the likeness check).
    pub image: Option<(String, String)>,
}

impl FormPage {
    pub fn new(title: &str, action: String, submit: &str, back: String) -> FormPage {
        FormPage {
            title: title.into(),
            intro: Vec::new(),
            action,
            submit: submit.into(),
            fields: Vec::new(),
            back,
            danger: false,
            warnings: Vec::new(),
            multipart: false,
            image: None,
        }
    }

    pub fn intro(mut self, line: &str) -> FormPage {
        self.intro.push(line.into());
        self
    }

    pub fn fields(mut self, fields: Vec<Field>) -> FormPage {
        self.fields = fields;
        self
    }

    pub fn danger(mut self) -> FormPage {
        self.danger = true;
        self
    }

    /// Fills each field with what was submitted (so nothing typed is lost on an error).
    pub fn refill(mut self, form: &super::Form) -> FormPage {
        for f in &mut self.fields {
            if f.kind != "hidden" {
                f.value = form.get(f.name).to_string();
            }
        }
        self
    }

    /// Marks blank required fields; true when there were none.
    pub fn check_required(&mut self) -> bool {
        let mut ok = true;
        for f in &mut self.fields {
            if f.required && f.value.trim().is_empty() {
                f.error = Some(format!("Enter {}", f.label.to_lowercase()));
                ok = false;
            }
        }
        ok
    }

    /// Attaches a refusal to the field it names (the domain's messages name their field), or to
    /// the first field.
    pub fn error(mut self, message: &str) -> FormPage {
        let at = self
            .fields
            .iter()
            .position(|f| f.kind != "hidden" && message.contains(f.name))
            .or_else(|| self.fields.iter().position(|f| f.kind != "hidden"));
        if let Some(i) = at {
            self.fields[i].error = Some(message.to_string());
        }
        self
    }

    /// Attaches an error to a named field.
    pub fn error_at(mut self, name: &str, message: &str) -> FormPage {
        if let Some(f) = self.fields.iter_mut().find(|f| f.name == name) {
            f.error = Some(message.to_string());
        }
        self
    }

    pub fn render(self, app: &AppState, staff: &Staff) -> Response {
        let status = if self.fields.iter().any(|f| f.error.is_some()) {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        let errors: Vec<(String, String)> = self
            .fields
            .iter()
            .filter_map(|f| f.error.clone().map(|e| (f.name.to_string(), e)))
            .collect();
        page_with_status(
            app,
            staff,
            status,
            "ra/form.html",
            context! { title => self.title.clone(), form => self, errors => errors },
        )
    }
}
