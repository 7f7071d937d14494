//! Printing `tagbust test` results: text for people, JUnit XML for CI systems.

use std::io::Write;

use tagbust::Rule;

use super::test_cmd::{CaseResult, FileResult};

/// One block per fixture file, one line per case, the diff under a failed case, and a closing
/// `N passed, N failed` line (a fixture that could not be read counts as one failure).
pub fn print_text(rules: &[Rule], results: &[FileResult]) {
    println!("rules:");
    for r in rules {
        let language = r
            .stamp()
            .map(|s| s.language.as_str())
            .unwrap_or("unstamped");
        println!(
            "  {}@{}  ({}, {language})",
            r.name(),
            r.info().version,
            r.file()
        );
    }
    let (mut passed, mut failed) = (0, 0);
    for f in results {
        println!();
        println!("{}", f.file);
        if !f.description.is_empty() {
            println!("  {}", f.description);
        }
        let cases = match &f.outcome {
            Ok(cases) => cases,
            Err(e) => {
                failed += 1;
                println!("  ERROR {e}");
                continue;
            }
        };
        for c in cases {
            let ms = c.elapsed.as_secs_f64() * 1e3;
            if c.problems.is_empty() {
                passed += 1;
                println!("  ok    {}  ({ms:.1} ms)", c.name);
                continue;
            }
            failed += 1;
            println!("  FAIL  {}  ({ms:.1} ms)", c.name);
            for p in &c.problems {
                println!("        {p}");
            }
            if !c.produced.is_empty() {
                println!("        produced:");
                for p in &c.produced {
                    println!("          {p}");
                }
            }
        }
    }
    println!();
    println!("{passed} passed, {failed} failed");
}

/// A `<testsuite>` per fixture file and a `<testcase>` per case; a fixture that could not be
/// read is one case with an `<error>`.
pub fn print_junit(results: &[FileResult]) -> anyhow::Result<()> {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let count = |f: &FileResult| match &f.outcome {
        Ok(cases) => (
            cases.len(),
            cases.iter().filter(|c| !c.problems.is_empty()).count(),
            0,
        ),
        Err(_) => (1, 0, 1),
    };
    let (tests, failures, errors) = results
        .iter()
        .map(count)
        .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
    out.push_str(&format!(
        "<testsuites name=\"tagbust test\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">\n"
    ));
    for f in results {
        let (tests, failures, errors) = count(f);
        let file = xml(&f.file);
        let time: f64 = match &f.outcome {
            Ok(cases) => cases.iter().map(|c| c.elapsed.as_secs_f64()).sum(),
            Err(_) => 0.0,
        };
        out.push_str(&format!(
            "  <testsuite name=\"{file}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time:.3}\">\n"
        ));
        match &f.outcome {
            Err(e) => out.push_str(&format!(
                "    <testcase classname=\"{file}\" name=\"(fixture)\" time=\"0\">\n      <error message=\"{}\">{}</error>\n    </testcase>\n",
                xml(e),
                xml(e)
            )),
            Ok(cases) => {
                for c in cases {
                    out.push_str(&testcase(&file, c));
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    Ok(())
}

fn testcase(file: &str, c: &CaseResult) -> String {
    let head = format!(
        "    <testcase classname=\"{file}\" name=\"{}\" time=\"{:.3}\"",
        xml(&c.name),
        c.elapsed.as_secs_f64()
    );
    if c.problems.is_empty() {
        return format!("{head}/>\n");
    }
    let mut body = c.problems.join("\n");
    if !c.produced.is_empty() {
        body.push_str("\nproduced:\n");
        body.push_str(&c.produced.join("\n"));
    }
    format!(
        "{head}>\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
        xml(&c.problems[0]),
        xml(&body)
    )
}

/// Escapes text for XML attributes and content; characters XML 1.0 cannot hold (most
/// control characters) become U+FFFD.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}
