//! The subset against what docker prints for the same template.

use serde_json::json;

use super::*;

fn render(t: &str, v: &Value) -> Result<String, TemplateError> {
    Template::parse(t)?.render(v)
}

fn img() -> Value {
    json!({
        "ID": "abc123", "Repository": "busybox", "Tag": "latest",
        "Config": {"Env": ["A=1", "B=2"], "Labels": {"k": "v", "x.y": "z"}, "Cmd": null},
        "Size": 4260000
    })
}

#[test]
fn fields_nesting_and_literals() {
    let v = img();
    assert_eq!(render("{{.ID}}", &v).unwrap(), "abc123");
    assert_eq!(
        render("{{.Repository}}:{{.Tag}}", &v).unwrap(),
        "busybox:latest"
    );
    assert_eq!(render("{{ .Config.Env }}", &v).unwrap(), "[A=1 B=2]");
    assert_eq!(render("{{.Size}}", &v).unwrap(), "4260000");
    assert_eq!(render("{{.Config.Cmd}}", &v).unwrap(), "<nil>");
    assert_eq!(render("{{.Config.Labels}}", &v).unwrap(), "map[k:v x.y:z]");
    assert_eq!(render("id={{.ID}}!", &v).unwrap(), "id=abc123!");
    assert_eq!(render("a\\tb\\nc", &v).unwrap(), "a\tb\nc");
    assert_eq!(render("{{/* note */}}x", &v).unwrap(), "x");
    assert_eq!(render("a  {{- .Tag -}}  b", &v).unwrap(), "alatestb");
}

#[test]
fn json_index_range_if() {
    let v = img();
    assert_eq!(
        render("{{json .Config.Env}}", &v).unwrap(),
        r#"["A=1","B=2"]"#
    );
    let whole: Value = serde_json::from_str(&render("{{json .}}", &v).unwrap()).unwrap();
    assert_eq!(whole, v);
    assert_eq!(render(r#"{{index .Config.Labels "k"}}"#, &v).unwrap(), "v");
    assert_eq!(
        render(r#"{{index .Config.Labels "nope"}}"#, &v).unwrap(),
        ""
    );
    assert_eq!(render("{{index .Config.Env 1}}", &v).unwrap(), "B=2");
    assert_eq!(render("{{.Config.Labels.nope}}", &v).unwrap(), "<no value>");
    assert_eq!(
        render("{{range .Config.Env}}[{{.}}]{{end}}", &v).unwrap(),
        "[A=1][B=2]"
    );
    assert_eq!(
        render("{{range .Config.Cmd}}x{{else}}none{{end}}", &v).unwrap(),
        "none"
    );
    assert_eq!(
        render("{{if .Config.Cmd}}cmd{{else}}no cmd{{end}}", &v).unwrap(),
        "no cmd"
    );
    assert_eq!(
        render("{{with .Config}}{{.Env}}{{end}}", &v).unwrap(),
        "[A=1 B=2]"
    );
    assert_eq!(
        render(r#"{{join .Config.Env ","}}"#, &v).unwrap(),
        "A=1,B=2"
    );
    assert_eq!(render("{{.Tag | upper}}", &v).unwrap(), "LATEST");
    assert_eq!(render("{{len .Config.Env}}", &v).unwrap(), "2");
    assert_eq!(
        render(r#"{{if eq .Tag "latest"}}y{{end}}"#, &v).unwrap(),
        "y"
    );
}

#[test]
fn table_header_and_alignment() {
    let rows = vec![
        json!({"Repository": "busybox", "Tag": "latest"}),
        json!({"Repository": "a-much-longer-name", "Tag": "1"}),
    ];
    let t = Template::parse("table {{.Repository}}\\t{{.Tag}}").unwrap();
    let titles = [("Repository", "REPOSITORY"), ("Tag", "TAG")];
    let out = t
        .render_rows(&rows, &|f| default_title(&titles, f))
        .unwrap();
    assert_eq!(
        out,
        "REPOSITORY           TAG\nbusybox              latest\na-much-longer-name   1\n"
    );
    // Short cells are padded to tabwriter's minimum width of 10.
    assert_eq!(align("a\tb\nccc\td"), "a         b\nccc       d");
    // Without `table`: no header, no alignment; `table` alone is the program's own.
    let plain = Template::parse("{{.Tag}}\\t{{.Repository}}").unwrap();
    assert_eq!(
        plain.render_rows(&rows[..1], &|f| f.to_owned()).unwrap(),
        "latest\tbusybox\n"
    );
    assert_eq!(Format::parse("table").unwrap(), Format::Table);
    assert_eq!(Format::parse("json").unwrap(), Format::Json);
    assert_eq!(
        Format::Json
            .render(&rows, &|f| f.to_owned())
            .unwrap()
            .unwrap()
            .lines()
            .count(),
        2
    );
}

#[test]
fn errors_are_one_clear_line() {
    let v = img();
    let e = render("{{.Foo}}", &v).unwrap_err().to_string();
    assert!(
        e.starts_with("template: :1:2: executing \"\" at <.Foo>: can't evaluate field Foo"),
        "{e}"
    );
    assert!(e.contains("Repository") && !e.contains('\n'), "{e}");
    let e = render("{{.Config.Nope}}", &v).unwrap_err().to_string();
    assert!(e.contains("can't evaluate field Nope"), "{e}");
    let e = render("x\n {{.Tag.X}}", &v).unwrap_err().to_string();
    assert!(
        e.starts_with("template: :2:3:") && e.contains("in type string"),
        "{e}"
    );
    for (bad, want) in [
        ("{{.ID", "unclosed action"),
        ("{{if .ID}}x", "unexpected EOF"),
        ("{{end}}", "unexpected {{end}}"),
        ("{{nosuch .ID}}", "function \"nosuch\" not defined"),
        ("{{\"abc}}", "unclosed action"),
        ("{{.ID | }}", "missing command"),
        ("{{.A..B}}", "bad field name"),
    ] {
        let e = Template::parse(bad).unwrap_err().to_string();
        assert!(
            e.starts_with("template: :1:") && e.contains(want),
            "{bad}: {e}"
        );
    }
    assert_eq!(
        Template::parse(&"x".repeat(MAX_TEMPLATE + 1)),
        Err(TemplateError::TooBig(MAX_TEMPLATE))
    );
    let big = json!({"L": vec!["y".repeat(1000); 2000]});
    assert_eq!(
        render("{{range .L}}{{.}}{{end}}", &big),
        Err(TemplateError::TooLong(MAX_ROW_OUTPUT))
    );
    let e = render("{{.ID 1}}", &v).unwrap_err().to_string();
    assert!(e.contains("non-function"), "{e}");
    let e = render("{{range .ID}}{{end}}", &v).unwrap_err().to_string();
    assert!(e.contains("can't iterate"), "{e}");
}

#[test]
fn nesting_is_bounded() {
    let t = "{{if .ID}}".repeat(40) + &"{{end}}".repeat(40);
    let e = Template::parse(&t).unwrap_err().to_string();
    assert!(e.contains("nesting too deep"), "{e}");
}
