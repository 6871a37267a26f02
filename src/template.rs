//! Letter templates: TOML front matter between `+++` lines, then a Markdown body; every
//! front-matter value and the body are Handlebars templates rendered per row in strict mode.
//!
//! Two registries per language variant, because Handlebars escapes per registry: front-matter
//! values become header values and are not escaped at all (composing checks them instead); the
//! body is Markdown, so row values are escaped to literal Markdown text
//! ([`crate::markdown::escape_literal`]), which makes them come out HTML-escaped in the HTML
//! part and exactly as typed in the text part.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, RenderContext, RenderError,
    RenderErrorReason, ScopedJson, TemplateError, TemplateErrorReason, handlebars_helper,
};
use serde::Deserialize;

use crate::error::{Error, Location, Problem};
use crate::locale::is_language_tag;
use crate::recipients::Recipient;
use crate::text::nearest;

mod cycles;

/// Front-matter keys, as the user writes them (README, "Templates").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    subject: String,
    from: Option<String>,
    reply_to: Option<String>,
    #[serde(default)]
    cc: OneOrMany,
    #[serde(default)]
    bcc: OneOrMany,
    #[serde(default)]
    attachments: Vec<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// `cc = "a@x"` and `cc = ["a@x", "b@x"]` both work.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// One letter rendered for one row: header values still as text, the body as Markdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedLetter {
    /// The template file used (a language variant or the plain one).
    pub template: PathBuf,
    /// The language of the variant used, if any.
    pub language: Option<String>,
    pub subject: String,
    pub from: Option<String>,
    pub reply_to: Option<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub attachments: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Where a registered template came from, to turn Handlebars positions into file lines.
#[derive(Debug, Clone)]
struct Origin {
    file: PathBuf,
    /// Line of the file on which the template's first line stands.
    first_line: usize,
    /// Whether Handlebars columns can be trusted (false for a value inside a TOML line).
    exact_columns: bool,
}

/// What one field of the front matter renders into.
#[derive(Debug, Clone)]
enum Field {
    Subject,
    From,
    ReplyTo,
    Cc,
    Bcc,
    Attachment,
    Header(String),
}

/// One language variant of the letter, compiled.
struct Variant {
    file: PathBuf,
    language: Option<String>,
    front: Handlebars<'static>,
    body: Handlebars<'static>,
    /// Front-matter templates in order: (registered name, what it fills).
    fields: Vec<(String, Field)>,
    origins: HashMap<String, Origin>,
}

/// Every variant of the letter, keyed by language ("" for the plain one).
pub struct Templates {
    variants: HashMap<String, Variant>,
    /// The recipients file's column names, for the hint when a variable is not one of them.
    columns: Vec<String>,
    recipients_display: PathBuf,
}

/// The name the letter's body is registered under: with a `/`, which no partial's file name
/// can hold, so that a `body.md` partial cannot replace the letter.
const BODY: &str = "letter/body";

impl Templates {
    /// Loads `letter.hbs`, its `letter.<lang>.hbs` variants and every `*.md` partial beside it.
    /// `template` is the file to read, `display` how it is named in messages.
    pub fn load(
        template: &Path,
        display: &Path,
        columns: &[String],
        recipients_display: &Path,
    ) -> Result<Templates, Error> {
        let folder = template.parent().unwrap_or(Path::new("."));
        let display_folder = display.parent().unwrap_or(Path::new(""));
        let file_name = template
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::input(Location::file(display), "is not a file name"))?;
        let (stem, ext) = file_name.rsplit_once('.').unwrap_or((file_name, ""));

        let files = TemplateFiles::scan(folder, stem, ext).map_err(|e| {
            Error::input(
                Location::file(display),
                format!("the templates folder cannot be read: {e}"),
            )
        })?;
        if !template.is_file() {
            return Err(Error::input(
                Location::file(display),
                "not found; create the letter template there or name it with --template",
            ));
        }

        let mut variants = HashMap::new();
        let mut languages: Vec<&str> = files.languages().collect();
        languages.sort_unstable();
        languages.dedup();
        for lang in std::iter::once("").chain(languages) {
            // `fr-ca` takes letter.fr-ca.hbs, else letter.fr.hbs, else the plain letter; and
            // each partial likewise (a variant exists as soon as either file does).
            let letter = files
                .letter_for(lang)
                .or_else(|| files.letter_for(primary_language(lang)))
                .map(|(name, _)| name.clone())
                .unwrap_or_else(|| file_name.to_owned());
            let variant = Variant::compile(
                &folder.join(&letter),
                &display_folder.join(&letter),
                (!lang.is_empty()).then(|| lang.to_owned()),
                &files.partials_for(lang),
                display_folder,
            )?;
            variants.insert(lang.to_owned(), variant);
        }
        Ok(Templates {
            variants,
            columns: columns.to_vec(),
            recipients_display: recipients_display.to_path_buf(),
        })
    }

    /// Renders the letter for one row. All problems of the row are returned together.
    pub fn render(&self, recipient: &Recipient) -> Result<RenderedLetter, Vec<Problem>> {
        let variant = self.variant_for(recipient.language());
        let data = Context::wraps(recipient.to_json()).map_err(|e| {
            vec![Problem::new(
                Location::file(&self.recipients_display).row(recipient.row()),
                format!("row cannot be used as template data: {e}"),
            )]
        })?;
        let mut problems = Vec::new();
        let mut letter = RenderedLetter {
            template: variant.file.clone(),
            language: variant.language.clone(),
            subject: String::new(),
            from: None,
            reply_to: None,
            cc: Vec::new(),
            bcc: Vec::new(),
            attachments: Vec::new(),
            headers: Vec::new(),
            body: String::new(),
        };
        for (name, field) in &variant.fields {
            match variant.front.render_with_context(name, &data) {
                Ok(value) => letter.fill(field, value),
                Err(e) => problems.push(self.render_problem(variant, &e, recipient)),
            }
        }
        match variant.body.render_with_context(BODY, &data) {
            Ok(body) => letter.body = body,
            Err(e) => problems.push(self.render_problem(variant, &e, recipient)),
        }
        if problems.is_empty() {
            Ok(letter)
        } else {
            Err(problems)
        }
    }

    /// The variant for a language: exact (`fr-ca`), then its primary tag (`fr`), then plain.
    fn variant_for(&self, language: Option<&str>) -> &Variant {
        let language = language.unwrap_or("").to_ascii_lowercase();
        self.variants
            .get(&language)
            .or_else(|| self.variants.get(primary_language(&language)))
            .unwrap_or(&self.variants[""])
    }

    fn render_problem(&self, variant: &Variant, e: &RenderError, recipient: &Recipient) -> Problem {
        let origin = e
            .template_name
            .as_ref()
            .and_then(|name| variant.origins.get(name))
            .cloned()
            .unwrap_or_else(|| Origin {
                file: variant.file.clone(),
                first_line: 1,
                exact_columns: false,
            });
        let mut location = Location::file(&origin.file);
        if let Some(line) = e.line_no {
            location = location.line(origin.first_line + line - 1);
            if let (true, Some(col)) = (origin.exact_columns, e.column_no) {
                location = location.col(col);
            }
        } else {
            location = location.line(origin.first_line);
        }
        let row = format!(
            "(rendering {} row {})",
            self.recipients_display.display(),
            recipient.row()
        );
        let message = match e.reason() {
            RenderErrorReason::MissingVariable(Some(var)) => {
                let columns = self.columns.join(", ");
                let recipients = self.recipients_display.display();
                // `{{org.name}}` looks up the column `org`; that is the name to compare.
                let column = var.split(['.', '/', '[']).next().unwrap_or(var);
                match nearest(column, self.columns.iter().map(String::as_str)) {
                    Some(near) => format!(
                        "the template uses {{{{{var}}}}} but {recipients} has no column \"{column}\"; did you mean {{{{{near}}}}}? correct the template or add the column (its columns: {columns}) {row}"
                    ),
                    None => format!(
                        "the template uses {{{{{var}}}}} but {recipients} has no column \"{column}\" (its columns: {columns}); add the column or correct the template {row}"
                    ),
                }
            }
            RenderErrorReason::MissingVariable(None) => {
                format!("the template uses a value this row does not define {row}")
            }
            RenderErrorReason::PartialNotFound(name) => format!(
                "the template includes {{{{> {name}}}}} but there is no {name}.md beside it; create it or correct the name {row}"
            ),
            RenderErrorReason::HelperNotFound(name) => format!(
                "\"{name}\" is not a helper envoi knows (helpers: upper, lower, default, date, format_date, and Handlebars' if, unless, each, with, eq, ne, and, or, not) {row}"
            ),
            other => format!("{other} {row}"),
        };
        Problem::new(location, message)
    }
}

impl RenderedLetter {
    fn fill(&mut self, field: &Field, value: String) {
        match field {
            Field::Subject => self.subject = value,
            Field::From => self.from = Some(value),
            Field::ReplyTo => self.reply_to = Some(value),
            Field::Cc => self.cc.push(value),
            Field::Bcc => self.bcc.push(value),
            Field::Attachment => self.attachments.push(value),
            Field::Header(name) => self.headers.push((name.clone(), value)),
        }
    }
}

impl Variant {
    fn compile(
        path: &Path,
        display: &Path,
        language: Option<String>,
        partials: &[(String, PathBuf)],
        display_folder: &Path,
    ) -> Result<Variant, Error> {
        let source = read_text(path, display)?;
        let (front_text, front_first_line, body_text, body_first_line) =
            split_front_matter(&source, display)?;
        let front: FrontMatter = toml::from_str(front_text).map_err(|e| {
            let mut location = Location::file(display);
            let line = e
                .span()
                .map_or(0, |s| crate::config::line_col(front_text, s.start).0);
            location = location.line(front_first_line + line.saturating_sub(1));
            let message = e.message().trim();
            let hint = crate::config::unknown_key_hint(message).unwrap_or_default();
            Error::input(location, format!("front matter: {message}{hint}"))
        })?;

        let mut variant = Variant {
            file: display.to_path_buf(),
            language,
            front: registry(false),
            body: registry(true),
            fields: Vec::new(),
            origins: HashMap::new(),
        };
        let key_line = |key: &str| front_first_line + find_key_line(front_text, key);
        let mut add = |key: &str, index: usize, field: Field, value: &str| -> Result<(), Error> {
            let name = format!("{}#{key}{}", display.display(), index_suffix(index));
            let origin = Origin {
                file: display.to_path_buf(),
                first_line: key_line(key),
                exact_columns: false,
            };
            refuse_decorators(value, &origin)?;
            variant
                .front
                .register_template_string(&name, value)
                .map_err(|e| template_error(&e, &origin))?;
            variant.origins.insert(name.clone(), origin);
            variant.fields.push((name, field));
            Ok(())
        };
        add("subject", 0, Field::Subject, &front.subject)?;
        if let Some(from) = &front.from {
            add("from", 0, Field::From, from)?;
        }
        if let Some(reply_to) = &front.reply_to {
            add("reply_to", 0, Field::ReplyTo, reply_to)?;
        }
        // Split into addresses before rendering, so that a row value (a name with a comma, or
        // a hostile "x <a@b>, y") stays inside its address and can never add a recipient.
        let cc: Vec<String> = front
            .cc
            .into_vec()
            .iter()
            .flat_map(|v| split_addresses(v))
            .collect();
        for (i, cc) in cc.iter().enumerate() {
            add("cc", i + 1, Field::Cc, cc)?;
        }
        let bcc: Vec<String> = front
            .bcc
            .into_vec()
            .iter()
            .flat_map(|v| split_addresses(v))
            .collect();
        for (i, bcc) in bcc.iter().enumerate() {
            add("bcc", i + 1, Field::Bcc, bcc)?;
        }
        for (i, a) in front.attachments.iter().enumerate() {
            add("attachments", i + 1, Field::Attachment, a)?;
        }
        for (name, value) in &front.headers {
            add(name, 0, Field::Header(name.clone()), value)?;
        }

        let body_origin = Origin {
            file: display.to_path_buf(),
            first_line: body_first_line,
            exact_columns: true,
        };
        refuse_decorators(body_text, &body_origin)?;
        variant
            .body
            .register_template_string(BODY, body_text)
            .map_err(|e| template_error(&e, &body_origin))?;
        variant.origins.insert(BODY.to_owned(), body_origin);
        for (name, file) in partials {
            let partial_display = display_folder.join(file.file_name().unwrap_or_default());
            let text = read_text(file, &partial_display)?;
            let origin = Origin {
                file: partial_display,
                first_line: 1,
                exact_columns: true,
            };
            refuse_decorators(&text, &origin)?;
            variant
                .body
                .register_partial(name, text)
                .map_err(|e| template_error(&e, &origin))?;
            variant.origins.insert(name.clone(), origin);
        }
        cycles::refuse_inclusion_loops(&variant.front, &variant.origins)?;
        cycles::refuse_inclusion_loops(&variant.body, &variant.origins)?;
        Ok(variant)
    }
}

/// Splits a front-matter address list template (`"a@x.example, {{name}} <b@x.example>"`) on
/// `,` and `;` outside quotes, angle brackets and `{{...}}` expressions; empty items are dropped.
fn split_addresses(template: &str) -> Vec<String> {
    let mut items = vec![String::new()];
    let (mut quoted, mut angle, mut expression) = (false, false, false);
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        let current = items.last_mut().expect("never empty");
        current.push(c);
        match c {
            '{' if !expression && chars.peek() == Some(&'{') => expression = true,
            '}' if expression && chars.peek() == Some(&'}') => {
                current.push('}');
                chars.next();
                while chars.peek() == Some(&'}') {
                    current.push('}');
                    chars.next();
                }
                expression = false;
            }
            _ if expression => {}
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' | ';' if !quoted && !angle => {
                current.pop();
                items.push(String::new());
            }
            _ => {}
        }
    }
    items
        .into_iter()
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

/// Handlebars decorators (`{{#*inline "x"}}`, `{{* name}}`) are refused: an inline partial
/// that includes itself recurses until the stack overflows, which no error can report. Letters
/// have no need for them: partials are `.md` files, checked for cycles.
fn refuse_decorators(text: &str, origin: &Origin) -> Result<(), Error> {
    let found = text.match_indices("{{").find(|(i, _)| {
        let rest = text[i + 2..].trim_start_matches('~').trim_start();
        rest.strip_prefix('#')
            .unwrap_or(rest)
            .trim_start()
            .starts_with('*')
    });
    let Some((at, _)) = found else {
        return Ok(());
    };
    let line = origin.first_line + text[..at].matches('\n').count();
    Err(Error::input(
        Location::file(&origin.file).line(line),
        "inline partials and other decorators ({{#*inline}}, {{*...}}) are not supported, as one that includes itself would never end; put the text in a .md partial beside the letter and include it with {{> name}}",
    ))
}

fn index_suffix(index: usize) -> String {
    if index == 0 {
        String::new()
    } else {
        format!("[{index}]")
    }
}

/// A Handlebars registry in strict mode with envoi's helpers; `markdown_body` picks the escape.
fn registry(markdown_body: bool) -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    if markdown_body {
        hb.register_escape_fn(crate::markdown::escape_literal);
    } else {
        hb.register_escape_fn(handlebars::no_escape);
    }
    hb.register_helper("upper", Box::new(Strict(upper)));
    hb.register_helper("lower", Box::new(Strict(lower)));
    hb.register_helper("default", Box::new(Strict(default)));
    hb.register_helper("date", Box::new(Strict(date_helper)));
    hb.register_helper("format_date", Box::new(Strict(format_date_helper)));
    hb
}

/// Strict mode for helper arguments too. Handlebars reports `{{upper nmae}}` as "param with
/// name s required but not found", which tells the user nothing; this names the missing
/// column, as `{{nmae}}` does.
struct Strict<H>(H);

impl<H: HelperDef> HelperDef for Strict<H> {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        missing_argument(h)?;
        self.0.call_inner(h, r, ctx, rc)
    }

    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        missing_argument(h)?;
        self.0.call(h, r, ctx, rc, out)
    }
}

fn missing_argument(h: &Helper) -> Result<(), RenderError> {
    match h
        .params()
        .iter()
        .chain(h.hash().values())
        .find(|p| p.is_value_missing())
    {
        Some(p) => Err(RenderErrorReason::MissingVariable(p.relative_path().cloned()).into()),
        None => Ok(()),
    }
}

handlebars_helper!(upper: |s: str| s.to_uppercase());
handlebars_helper!(lower: |s: str| s.to_lowercase());
handlebars_helper!(default: |value: Json, fallback: str| {
    match value {
        serde_json::Value::Null => fallback.to_owned(),
        serde_json::Value::String(s) if s.trim().is_empty() => fallback.to_owned(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
});

/// `{{date "%e %B %Y"}}` or `{{date "%e %B %Y" lang="fr"}}`: today's date (or `ENVOI_TODAY`,
/// as YYYY-MM-DD, for reproducible previews), month names in the given language.
fn date_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    write_date(h, today()?, 0, out)
}

/// `{{format_date column "%e %B %Y" lang="fr"}}` formats a YYYY-MM-DD cell.
fn format_date_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let value = h
        .param(0)
        .and_then(|p| p.value().as_str())
        .ok_or(RenderErrorReason::ParamNotFoundForIndex("format_date", 0))?;
    let date = chrono::NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").map_err(|_| {
        RenderErrorReason::Other(format!(
            "format_date: \"{value}\" is not a date written as YYYY-MM-DD"
        ))
    })?;
    write_date(h, date, 1, out)
}

/// Writes `date` in the format given as parameter `format_param` (default "%e %B %Y"), with
/// month names in the helper's `lang=` language.
fn write_date(
    h: &Helper,
    date: chrono::NaiveDate,
    format_param: usize,
    out: &mut dyn Output,
) -> HelperResult {
    let format = h
        .param(format_param)
        .and_then(|p| p.value().as_str())
        .unwrap_or("%e %B %Y");
    let lang = h.hash_get("lang").and_then(|v| v.value().as_str());
    out.write(format_localized(date, format, lang)?.trim())?;
    Ok(())
}

fn today() -> Result<chrono::NaiveDate, RenderError> {
    match std::env::var("ENVOI_TODAY") {
        Ok(v) => chrono::NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").map_err(|_| {
            RenderErrorReason::Other(format!("ENVOI_TODAY=\"{v}\" is not YYYY-MM-DD")).into()
        }),
        Err(_) => Ok(chrono::Local::now().date_naive()),
    }
}

fn format_localized(
    date: chrono::NaiveDate,
    format: &str,
    lang: Option<&str>,
) -> Result<String, RenderError> {
    // Without lang=, British English; a language chrono has no locale for is a problem, not
    // English in disguise.
    let lang = lang.unwrap_or("en");
    let locale = crate::locale::chrono_locale(lang).ok_or_else(|| {
        RenderErrorReason::Other(format!(
            "lang=\"{lang}\" is not a language envoi can write dates in; use a language code such as en, fr, fr-CA, az, ru or ar"
        ))
    })?;
    // An unknown code (`%Q`) makes chrono's Display fail, which `to_string` would turn into a
    // panic; writing reports it instead.
    let mut text = String::new();
    std::fmt::Write::write_fmt(
        &mut text,
        format_args!("{}", date.format_localized(format, locale)),
    )
    .map_err(|_| {
        RenderErrorReason::Other(format!(
            "\"{format}\" is not a date format; use codes such as %e %B %Y (day, month, year)"
        ))
    })?;
    Ok(text)
}

fn template_error(e: &TemplateError, origin: &Origin) -> Error {
    let mut location = Location::file(&origin.file);
    match e.pos() {
        Some((line, col)) => {
            location = location.line(origin.first_line + line - 1);
            if origin.exact_columns {
                location = location.col(col);
            }
        }
        None => location = location.line(origin.first_line),
    }
    let reason = match e.reason() {
        // The parser's own words ("expected identifier, helper_parameter, or
        // trailing_tilde_to_omit_whitespace") mean nothing to the people who write letters.
        TemplateErrorReason::InvalidSyntax(_) => "the {{...}} here is not complete or not valid; check that every {{ is closed by }}, and every {{#if ...}} or {{#each ...}} by its {{/if}} or {{/each}}".to_owned(),
        other => other.to_string(),
    };
    Error::input(location, format!("template syntax error: {reason}"))
}

fn read_text(path: &Path, display: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::input(Location::file(display), "not found"),
        _ => Error::io(display, "cannot read", e),
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let (line, _) = crate::config::line_col(
            &String::from_utf8_lossy(&e.as_bytes()[..e.utf8_error().valid_up_to()]),
            usize::MAX,
        );
        Error::input(
            Location::file(display).line(line),
            "is not UTF-8 text; save the file as UTF-8",
        )
    })?;
    // Windows editors: a BOM and CRLF line endings are fine.
    Ok(text.trim_start_matches('\u{feff}').replace("\r\n", "\n"))
}

/// Splits `+++\n<toml>\n+++\n<body>` and returns the parts with the file line each starts on.
fn split_front_matter<'a>(
    source: &'a str,
    display: &Path,
) -> Result<(&'a str, usize, &'a str, usize), Error> {
    let missing = || {
        Error::input(
            Location::file(display).line(1),
            "the letter must start with front matter: a line +++, then at least subject = \"...\", then a line +++",
        )
    };
    let rest = source
        .strip_prefix("+++\n")
        .or_else(|| (source.trim_end() == "+++").then_some(""))
        .ok_or_else(missing)?;
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "+++" {
            let front = &rest[..offset];
            let body = &rest[offset + line.len()..];
            let front_lines = front.matches('\n').count();
            // Line 1 is the opening +++; the closing +++ follows the front matter.
            return Ok((front, 2, body, front_lines + 3));
        }
        offset += line.len();
    }
    Err(Error::input(
        Location::file(display).line(1),
        "the front matter opened with +++ on line 1 is never closed; add a line +++ after it",
    ))
}

/// The 0-based line (within the front matter) where `key = ` stands, or 0.
fn find_key_line(front: &str, key: &str) -> usize {
    front
        .lines()
        .position(|line| {
            let line = line.trim_start().trim_start_matches('"');
            line.strip_prefix(key).is_some_and(|rest| {
                let rest = rest.trim_start_matches('"').trim_start();
                rest.starts_with('=')
            })
        })
        .unwrap_or(0)
}

/// The template files beside the letter: `stem[.lang].ext` letters and `*.md` partials.
struct TemplateFiles {
    /// (file name, language or "")
    letters: Vec<(String, String)>,
    /// (partial name, language or "", path)
    partials: Vec<(String, String, PathBuf)>,
}

impl TemplateFiles {
    fn scan(folder: &Path, stem: &str, ext: &str) -> std::io::Result<TemplateFiles> {
        let mut files = TemplateFiles {
            letters: Vec::new(),
            partials: Vec::new(),
        };
        let entries = match std::fs::read_dir(folder) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            // Rows' language codes are compared in lower case, so `letter.pt-BR.hbs` serves
            // a row that says pt-BR (or pt-br).
            if let Some(base) = name.strip_suffix(".md") {
                let (partial, lang) = split_language(base);
                files
                    .partials
                    .push((partial.to_owned(), lang.to_ascii_lowercase(), entry.path()));
            } else if let Some(base) = name.strip_suffix(ext).and_then(|b| b.strip_suffix('.')) {
                let (letter, lang) = split_language(base);
                if letter == stem {
                    files
                        .letters
                        .push((name.clone(), lang.to_ascii_lowercase()));
                }
            }
        }
        files.partials.sort();
        Ok(files)
    }

    fn languages(&self) -> impl Iterator<Item = &str> {
        self.letters
            .iter()
            .map(|(_, l)| l.as_str())
            .chain(self.partials.iter().map(|(_, l, _)| l.as_str()))
            .filter(|l| !l.is_empty())
    }

    fn letter_for(&self, lang: &str) -> Option<&(String, String)> {
        self.letters.iter().find(|(_, l)| l == lang)
    }

    /// Each partial once: the `lang` variant where it exists, else the plain file.
    fn partials_for(&self, lang: &str) -> Vec<(String, PathBuf)> {
        let mut chosen: BTreeMap<&str, &PathBuf> = BTreeMap::new();
        for (name, l, path) in &self.partials {
            if l.is_empty() {
                chosen.entry(name).or_insert(path);
            }
        }
        // The primary tag's file first, so that the exact one (fr-ca over fr) wins.
        for wanted in [primary_language(lang), lang] {
            for (name, l, path) in &self.partials {
                if !wanted.is_empty() && l == wanted {
                    chosen.insert(name, path);
                }
            }
        }
        chosen
            .into_iter()
            .map(|(n, p)| (n.to_owned(), p.clone()))
            .collect()
    }
}

/// `fr-ca` → `fr`; `fr` → `fr`.
fn primary_language(tag: &str) -> &str {
    tag.split('-').next().unwrap_or("")
}

/// `statement.fr` → (`statement`, `fr`); `statement` → (`statement`, ``). Only a suffix that
/// looks like a language tag counts, so `notes.draft` stays one name.
fn split_language(base: &str) -> (&str, &str) {
    match base.rsplit_once('.') {
        Some((name, lang)) if is_language_tag(lang) => (name, lang),
        _ => (base, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_parts_and_their_lines() {
        let src = "+++\nsubject = \"S\"\ncc = [\"a@x.example\"]\n+++\nDear {{name}},\n";
        let (front, front_line, body, body_line) =
            split_front_matter(src, Path::new("letter.hbs")).unwrap();
        assert_eq!(front, "subject = \"S\"\ncc = [\"a@x.example\"]\n");
        assert_eq!((front_line, body_line), (2, 5));
        assert_eq!(body, "Dear {{name}},\n");
        assert_eq!(find_key_line(front, "cc"), 1);
        assert_eq!(find_key_line(front, "subject"), 0);
    }

    #[test]
    fn missing_or_unclosed_front_matter_is_explained() {
        let err = split_front_matter("Dear all\n", Path::new("letter.hbs")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("letter.hbs, line 1: the letter must start with front matter"),
            "{err}"
        );
        let err =
            split_front_matter("+++\nsubject = \"x\"\n", Path::new("letter.hbs")).unwrap_err();
        assert!(err.to_string().contains("never closed"), "{err}");
    }

    /// A templates folder with `letter.hbs` and the given partials; returns the load result.
    fn load(letter: &str, partials: &[(&str, &str)]) -> Result<Templates, Error> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("letter.hbs"), letter).unwrap();
        for (name, text) in partials {
            std::fs::write(dir.path().join(format!("{name}.md")), text).unwrap();
        }
        Templates::load(
            &dir.path().join("letter.hbs"),
            Path::new("templates/letter.hbs"),
            &["email".to_owned()],
            Path::new("recipients.csv"),
        )
    }

    #[test]
    fn inline_partials_are_refused_before_they_can_recurse() {
        let looping = "{{#*inline \"loop\"}}a{{> loop}}{{/inline}}{{> loop}}";
        let err = load(
            &format!("+++\nsubject = \"S\"\n+++\nDear all,\n\n{looping}\n"),
            &[],
        )
        .err()
        .unwrap();
        assert!(
            err.to_string()
                .starts_with("templates/letter.hbs, line 6: inline partials"),
            "{err}"
        );
        let err = load(
            "+++\nsubject = \"S\"\n+++\n{{> p}}\n",
            &[("p", "x\n{{~ * log}}")],
        )
        .err()
        .unwrap();
        assert!(
            err.to_string().starts_with("templates/p.md, line 2:"),
            "{err}"
        );
        let err = load(&format!("+++\nsubject = '{looping}'\n+++\nx\n"), &[])
            .err()
            .unwrap();
        assert!(
            err.to_string().starts_with("templates/letter.hbs, line 2:"),
            "{err}"
        );
        // Ordinary blocks and partials are untouched.
        assert!(
            load(
                "+++\nsubject = \"S\"\n+++\n{{#if email}}{{> p}}{{/if}} 2 * 3\n",
                &[("p", "x")]
            )
            .is_ok()
        );
    }

    #[test]
    fn partial_cycles_are_found_quickly_in_any_shape() {
        let letter = "+++\nsubject = \"S\"\n+++\n{{> p0}}\n";
        // Every partial includes every later one: 2^29 paths, no cycle.
        let texts: Vec<(String, String)> = (0..30)
            .map(|i| {
                let includes: String = (i + 1..30).map(|j| format!("{{{{> p{j}}}}}")).collect();
                (format!("p{i}"), includes)
            })
            .collect();
        let partials: Vec<(&str, &str)> = texts
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        let started = std::time::Instant::now();
        assert!(load(letter, &partials).is_ok());
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        // Closing the loop from the last back to the first is found, naming the chain.
        let mut looped = partials.clone();
        looped[29] = ("p29", "{{> p0}}");
        let err = load(letter, &looped).err().unwrap().to_string();
        assert!(
            err.starts_with("templates/p29.md, line 1: the templates include one another in a loop that would never end (templates/p0.md, line 1 → templates/p1.md, line 1 → "),
            "{err}"
        );
        assert!(
            err.ends_with(
                "templates/p29.md, line 1 → templates/p0.md); remove one of these inclusions"
            ),
            "{err}"
        );
        let err = load(letter, &[("p0", "{{> p0}}")])
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            "templates/p0.md, line 1: the template includes itself, which would never end (templates/p0.md, line 1 → templates/p0.md); remove that inclusion"
        );
    }

    #[test]
    fn address_lists_are_split_before_rendering() {
        assert_eq!(
            split_addresses(
                "a@x.example; \"Doe, J\" <j@x.example>, Office of {{name}} <o@x.example>"
            ),
            [
                "a@x.example",
                "\"Doe, J\" <j@x.example>",
                "Office of {{name}} <o@x.example>"
            ]
        );
        assert_eq!(
            split_addresses(
                "{{default assistant \"a@x.example, b@x.example\"}},{{{raw}}} <r@x.example>;;"
            ),
            [
                "{{default assistant \"a@x.example, b@x.example\"}}",
                "{{{raw}}} <r@x.example>"
            ]
        );
        assert!(split_addresses(" , ; ").is_empty());
    }

    #[test]
    fn a_bad_date_format_is_an_error_not_a_panic() {
        // Found by `cargo fuzz run template`: chrono fails on an unknown code.
        let date = chrono::NaiveDate::from_ymd_opt(2024, 1, 19).unwrap();
        assert_eq!(
            format_localized(date, "%e %B %Y", Some("fr")).unwrap(),
            "19 janvier 2024"
        );
        for bad in ["%Q", "%", "%e %"] {
            let err = format_localized(date, bad, None).unwrap_err();
            assert!(err.to_string().contains("is not a date format"), "{err}");
        }
    }

    #[test]
    fn language_suffixes() {
        assert_eq!(split_language("letter.fr"), ("letter", "fr"));
        assert_eq!(split_language("letter.pt-br"), ("letter", "pt-br"));
        assert_eq!(split_language("notes.draft"), ("notes.draft", ""));
    }
}
