//! The index's editable metadata (title, artist, description, tags, category) read from JSON and
//! checked field by field. Pure: JSON in, an [`InfoUpdate`] or a 400 naming the field out.
//!
//! Every text is attacker-controlled: what is stored is the text as given (it is data, escaped by
//! whoever renders it), but control characters, which no title needs and which break logs and
//! terminals, are refused.

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::store::info::{InfoUpdate, CATEGORIES};

/// The fields `PATCH /api/v1/torrents/{hash}` changes.
pub const EDITABLE: [&str; 5] = ["title", "artist", "description", "tags", "category"];

const MAX_TITLE: usize = 200;
const MAX_DESCRIPTION: usize = 20_000;
const MAX_TAGS: usize = 20;
const MAX_TAG: usize = 32;

/// A JSON merge patch (RFC 7396) of the editable fields: a field sent replaces the stored one,
/// `null` clears it, a field not sent stays. Any other field is refused.
pub fn patch(body: &[u8]) -> Result<InfoUpdate, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(ApiError::BadRequest(
            "body must be a JSON object of the fields to change".into(),
        ));
    };
    if let Some(unknown) = fields.keys().find(|k| !EDITABLE.contains(&k.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "{}: unknown field; the fields that can be changed are {}",
            crate::api::access::short(unknown),
            EDITABLE.join(", ")
        )));
    }
    if fields.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "nothing to change: send one or more of {}",
            EDITABLE.join(", ")
        )));
    }
    editable(&fields)
}

/// The editable fields found in `fields` (others are the caller's business).
pub fn editable(fields: &Map<String, Value>) -> Result<InfoUpdate, ApiError> {
    Ok(InfoUpdate {
        title: line(fields, "title", MAX_TITLE)?,
        artist: line(fields, "artist", MAX_TITLE)?,
        description: text(fields, "description")?,
        tags: tags(fields.get("tags"))?,
        category: category(fields.get("category"))?,
        ..InfoUpdate::default()
    })
}

fn field_error(field: &str, problem: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("{field}: {problem}"))
}

/// A one-line text: no control characters, at most `max` characters.
fn line(fields: &Map<String, Value>, field: &str, max: usize) -> Result<Option<String>, ApiError> {
    let Some(value) = string(fields, field)? else {
        return Ok(None);
    };
    let value = value.trim();
    if value.chars().any(char::is_control) {
        return Err(field_error(field, "control characters are not allowed"));
    }
    if value.chars().count() > max {
        return Err(field_error(field, format!("at most {max} characters")));
    }
    Ok(Some(value.to_owned()))
}

/// A text of several lines: tabs and line breaks are the only control characters allowed.
fn text(fields: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    let Some(value) = string(fields, field)? else {
        return Ok(None);
    };
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(field_error(
            field,
            "control characters other than tabs and line breaks are not allowed",
        ));
    }
    if value.chars().count() > MAX_DESCRIPTION {
        return Err(field_error(
            field,
            format!("at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(Some(value.trim_end().to_owned()))
}

/// A string field: `None` when absent, `Some("")` for `null` (cleared).
fn string<'a>(fields: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, ApiError> {
    match fields.get(field) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some("")),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(field_error(field, "must be a string (or null to clear it)")),
    }
}

/// Tags: a list of strings (or one string of comma-separated tags), each 1 to 32 letters, digits,
/// `-`, `_`, `.` or spaces inside; lowercased, each kept once.
fn tags(value: Option<&Value>) -> Result<Option<Vec<String>>, ApiError> {
    let given: Vec<&str> = match value {
        None => return Ok(None),
        Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split(',').filter(|t| !t.trim().is_empty()).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .ok_or_else(|| field_error("tags", "each tag must be a string"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(field_error(
                "tags",
                "must be a list of strings (or null to clear them)",
            ))
        }
    };
    let mut tags: Vec<String> = Vec::with_capacity(given.len());
    for tag in given {
        let tag: String = tag.trim().chars().flat_map(char::to_lowercase).collect();
        let valid = !tag.is_empty()
            && tag.chars().count() <= MAX_TAG
            && tag
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '));
        if !valid {
            return Err(field_error(
                "tags",
                format!(
                    "{:?} is not a tag: 1 to {MAX_TAG} letters, digits, '-', '_', '.' or spaces",
                    crate::api::access::short(&tag)
                ),
            ));
        }
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(field_error("tags", format!("at most {MAX_TAGS} tags")));
    }
    Ok(Some(tags))
}

fn category(value: Option<&Value>) -> Result<Option<String>, ApiError> {
    let names = || {
        CATEGORIES
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match value {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(String::new())),
        Some(Value::String(s)) => {
            let lower = s.trim().to_ascii_lowercase();
            if lower.is_empty() || CATEGORIES.iter().any(|(name, _)| *name == lower) {
                Ok(Some(lower))
            } else {
                Err(field_error(
                    "category",
                    format!(
                        "{:?} is not a category; one of {}",
                        crate::api::access::short(s),
                        names()
                    ),
                ))
            }
        }
        Some(_) => Err(field_error(
            "category",
            format!("must be a string, one of {}", names()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(body: &str) -> String {
        patch(body.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn a_patch_changes_what_it_names_and_null_clears() {
        let update = patch(
            r#"{"title": " Live at <b>Home</b> ", "tags": ["Jazz", "jazz", "Été 2024"], "artist": null}"#
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(update.title.as_deref(), Some("Live at <b>Home</b>"));
        assert_eq!(update.artist.as_deref(), Some(""));
        assert_eq!(
            update.tags,
            Some(vec!["jazz".to_string(), "été 2024".to_string()])
        );
        assert_eq!(update.description, None);
        assert_eq!(update.category, None);
        assert_eq!(
            patch(br#"{"category": "TV"}"#).unwrap().category.as_deref(),
            Some("tv")
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        assert!(error(r#"{"name": "x"}"#).starts_with("name: unknown field"));
        assert!(error(r#"{"title": 5}"#).starts_with("title: must be a string"));
        assert!(error(r#"{"title": "a\u0007b"}"#).starts_with("title: control characters"));
        assert!(error(&format!(r#"{{"artist": "{}"}}"#, "x".repeat(201))).starts_with("artist:"));
        assert!(error(r#"{"tags": ["ok", "<img>"]}"#).starts_with("tags: \"<img>\" is not a tag"));
        assert!(error(r#"{"tags": [1]}"#).starts_with("tags: each tag"));
        assert!(error(r#"{"category": "warez"}"#).starts_with("category: \"warez\""));
        assert!(error(r#"{"description": "a\u0000"}"#).starts_with("description:"));
        assert!(error("[]").contains("JSON object"));
        assert!(error("{}").starts_with("nothing to change"));
        assert!(error("{").contains("not valid JSON"));
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert!(error(&serde_json::json!({ "tags": many }).to_string()).contains("at most 20"));
    }

    #[test]
    fn descriptions_keep_their_lines() {
        let update = patch(br#"{"description": "line one\n\tline two\n"}"#).unwrap();
        assert_eq!(update.description.as_deref(), Some("line one\n\tline two"));
    }
}
