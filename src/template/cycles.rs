//! Inclusion loops, found in Handlebars' parsed templates before anything renders.
//!
//! A template that includes itself, directly (`{{> statement}}` in statement.md), through
//! others (a → b → a), through a block partial (`{{#> statement}}…{{/statement}}`) or through
//! the letter's body renders until the stack overflows, which no error can report; so the loop
//! is refused when the templates are loaded. Each language variant has its own registry (its
//! own choice of partial files), so each is checked on its own. A partial whose name is
//! computed at render time (`{{> (lookup this 'column')}}`) could close a loop with a row value,
//! so it is refused too.

use std::collections::{BTreeMap, HashMap, HashSet};

use handlebars::template::{Parameter, Template, TemplateElement};
use handlebars::{Handlebars, Path};

use super::Origin;
use crate::error::{Error, Location};

/// How a partial names the content of the block partial it was included by: not a template of
/// the registry, and rendered before the partial is entered.
const PARTIAL_BLOCK: &str = "@partial-block";

/// One `{{> name}}` or `{{#> name}}…{{/name}}` in a template.
struct Include {
    target: String,
    /// The line within the template's own text (1-based), as Handlebars counts it.
    line: usize,
}

/// Refuses a registry whose templates include one another in a loop, with one message naming
/// the files, the lines and the loop. `origins` maps each registered name to its file.
pub(super) fn refuse_inclusion_loops(
    registry: &Handlebars<'_>,
    origins: &HashMap<String, Origin>,
) -> Result<(), Error> {
    // In name order, so the same folder always gets the same message.
    let mut graph: BTreeMap<&str, Vec<Include>> = BTreeMap::new();
    for (name, template) in registry.get_templates() {
        let mut includes = Vec::new();
        collect_includes(template, &mut includes).map_err(|line| {
            Error::input(
                place(origins, name, line),
                "the name of this partial is computed ({{> (...)}}), so envoi cannot make sure it never includes itself; write the name out, as in {{> statement}}",
            )
        })?;
        graph.insert(name.as_str(), includes);
    }
    // Depth-first, each template finished once: linear in the includes however they are
    // wired (following every path instead would take exponential time on some graphs).
    let mut finished: HashSet<&str> = HashSet::new();
    let starts: Vec<&str> = graph.keys().copied().collect();
    for start in starts {
        // The templates being expanded, each with how many of its includes were followed.
        let mut path: Vec<(&str, usize)> = vec![(start, 0)];
        while let Some((node, followed)) = path.last_mut() {
            let node: &str = node;
            let Some(include) = graph[node].get(*followed) else {
                finished.insert(node);
                path.pop();
                continue;
            };
            *followed += 1;
            let target = include.target.as_str();
            if let Some(at) = path.iter().position(|(n, _)| *n == target) {
                return Err(loop_error(&graph, origins, &path[at..]));
            }
            // An include of a name the registry lacks is no loop: rendering reports it.
            if let Some((&name, _)) = graph.get_key_value(target)
                && !finished.contains(name)
            {
                path.push((name, 0));
            }
        }
    }
    Ok(())
}

/// Every include in `template`, those inside blocks too. `Err(line)`: a computed name.
fn collect_includes(template: &Template, out: &mut Vec<Include>) -> Result<(), usize> {
    for (i, element) in template.elements.iter().enumerate() {
        let line = template.mapping.get(i).map_or(1, |at| at.0);
        match element {
            TemplateElement::PartialExpression(partial)
            | TemplateElement::PartialBlock(partial) => {
                let target = match &partial.name {
                    Parameter::Name(name) => name.clone(),
                    Parameter::Path(Path::Relative((_, raw)) | Path::Local((_, _, raw))) => {
                        raw.clone()
                    }
                    Parameter::Literal(value) => value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_owned),
                    // A subexpression, computed when rendering.
                    _ => return Err(line),
                };
                if target != PARTIAL_BLOCK {
                    out.push(Include { target, line });
                }
                // A block partial's content renders as part of this template, so what it
                // includes, this template includes.
                if let Some(content) = &partial.template {
                    collect_includes(content, out)?;
                }
            }
            TemplateElement::HelperBlock(block) => {
                for inner in block.template.iter().chain(&block.inverse) {
                    collect_includes(inner, out)?;
                }
            }
            TemplateElement::DecoratorBlock(block) => {
                if let Some(inner) = &block.template {
                    collect_includes(inner, out)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// `file, line N` of a line of a registered template.
fn place(origins: &HashMap<String, Origin>, name: &str, line: usize) -> Location {
    match origins.get(name) {
        Some(origin) => Location::file(&origin.file).line(origin.first_line + line - 1),
        None => Location::file(name).line(line),
    }
}

/// The loop `cycle` (each template with how many of its includes were followed, the last one
/// leading on) as one message, placed at the include that closes it.
fn loop_error(
    graph: &BTreeMap<&str, Vec<Include>>,
    origins: &HashMap<String, Origin>,
    cycle: &[(&str, usize)],
) -> Error {
    let step =
        |&(node, followed): &(&str, usize)| place(origins, node, graph[node][followed - 1].line);
    let (first, _) = cycle[0];
    let back_to = origins
        .get(first)
        .map_or_else(|| first.to_owned(), |o| o.file.display().to_string());
    let chain: Vec<String> = cycle
        .iter()
        .map(|s| step(s).to_string())
        .chain(std::iter::once(back_to))
        .collect();
    let closing = step(cycle.last().expect("a loop has a step"));
    let message = if cycle.len() == 1 {
        format!(
            "the template includes itself, which would never end ({}); remove that inclusion",
            chain.join(" → ")
        )
    } else {
        format!(
            "the templates include one another in a loop that would never end ({}); remove one of these inclusions",
            chain.join(" → ")
        )
    };
    Error::input(closing, message)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::Templates;

    /// Loads `letter` (its body after a front matter of one line) with the given files beside
    /// it; the error message, if any.
    fn refusal(body: &str, files: &[(&str, &str)]) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let letter = format!("+++\nsubject = \"S\"\n+++\n{body}");
        std::fs::write(dir.path().join("letter.hbs"), letter).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        Templates::load(
            &dir.path().join("letter.hbs"),
            Path::new("templates/letter.hbs"),
            &["email".to_owned(), "part".to_owned()],
            Path::new("recipients.csv"),
        )
        .err()
        .map(|e| e.to_string())
    }

    #[test]
    fn a_partial_including_itself_is_refused_with_its_line() {
        assert_eq!(
            refusal(
                "{{> statement}}\n",
                &[("statement.md", "Text.\n\n{{> statement}}\n")]
            )
            .unwrap(),
            "templates/statement.md, line 3: the template includes itself, which would never end (templates/statement.md, line 3 → templates/statement.md); remove that inclusion"
        );
    }

    #[test]
    fn a_block_partial_including_itself_is_refused() {
        // `{{#> statement}}{{/statement}}` used to overflow the stack (exit 134).
        let err = refusal(
            "{{> statement}}\n",
            &[("statement.md", "Text.\n{{#> statement}}{{/statement}}\n")],
        )
        .unwrap();
        assert!(
            err.starts_with("templates/statement.md, line 2: the template includes itself"),
            "{err}"
        );
        // Also when the loop hides inside the content of a block partial, or inside a block.
        let err = refusal(
            "{{#> layout}}{{> annex}}{{/layout}}\n",
            &[
                ("layout.md", "{{> @partial-block}}\n"),
                (
                    "annex.md",
                    "\n\n{{#if email}}\n{{else}}{{#> layout}}x{{> annex}}{{/layout}}{{/if}}\n",
                ),
            ],
        )
        .unwrap();
        assert!(
            err.starts_with("templates/annex.md, line 4: the template includes itself"),
            "{err}"
        );
    }

    #[test]
    fn a_loop_through_other_partials_names_every_file_and_line() {
        let err = refusal(
            "{{> statement}}\n",
            &[
                ("statement.md", "Text.\n{{> annex}}\n"),
                ("annex.md", "Annex.\n\n\n{{> statement}}\n"),
            ],
        )
        .unwrap();
        assert_eq!(
            err,
            "templates/statement.md, line 2: the templates include one another in a loop that would never end (templates/annex.md, line 4 → templates/statement.md, line 2 → templates/annex.md); remove one of these inclusions"
        );
    }

    #[test]
    fn a_partial_including_the_letter_body_is_refused() {
        // The body is not a partial: `{{> body}}` names nothing, as a `body.md` is a partial
        // like any other and cannot replace the letter.
        let err = refusal("{{> p}}\n", &[("p.md", "{{> body}}\n")]);
        assert_eq!(err, None, "a missing partial is reported when rendering");
        let err = refusal("Dear all,\n{{> p}}\n", &[("p.md", "{{> letter/body}}\n")]).unwrap();
        assert_eq!(
            err,
            "templates/p.md, line 1: the templates include one another in a loop that would never end (templates/letter.hbs, line 5 → templates/p.md, line 1 → templates/letter.hbs); remove one of these inclusions"
        );
        assert_eq!(refusal("{{> body}}\n", &[("body.md", "Text.\n")]), None);
    }

    #[test]
    fn a_loop_through_a_language_variant_is_refused_naming_the_variant() {
        let files = [
            ("statement.md", "Text.\n"),
            ("statement.fr.md", "Texte.\n{{> annex}}\n"),
            ("annex.md", "{{> statement}}\n"),
        ];
        let err = refusal("{{> statement}}\n", &files).unwrap();
        assert!(
            err.contains("(templates/annex.md, line 1 → templates/statement.fr.md, line 2 → templates/annex.md)"),
            "{err}"
        );
        // Without the variant, the same partials are fine.
        assert_eq!(refusal("{{> statement}}\n", &[files[0], files[2]]), None);
    }

    #[test]
    fn a_computed_partial_name_is_refused() {
        let err = refusal("\n{{> (lookup this 'part')}}\n", &[("p.md", "x")]).unwrap();
        assert_eq!(
            err,
            "templates/letter.hbs, line 5: the name of this partial is computed ({{> (...)}}), so envoi cannot make sure it never includes itself; write the name out, as in {{> statement}}"
        );
    }
}
