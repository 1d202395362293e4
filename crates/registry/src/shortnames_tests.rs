//! shortnames.rs's unit tests: short-name-mode with and without a question, and the
//! store look-up order.

use super::*;

fn conf(text: &str) -> RegistriesConf {
    crate::registries_conf::tests::conf(text).unwrap()
}

const TWO: &str = "unqualified-search-registries = [\"r1.example\", \"r2.example\"]\n";

#[test]
fn modes_without_a_question() {
    let enforcing = conf(&format!("{TWO}short-name-mode = \"enforcing\"\n"));
    let e = pull_candidates(&enforcing, "tool", None).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("r1.example/tool, r2.example/tool"), "{text}");
    // qualified names and aliases are never ambiguous
    assert_eq!(
        pull_candidates(&enforcing, "r9.example/x", None).unwrap(),
        ["r9.example/x"]
    );
    let permissive = conf(TWO);
    assert_eq!(pull_candidates(&permissive, "tool", None).unwrap().len(), 2);
    let one =
        conf("unqualified-search-registries = [\"r1.example\"]\nshort-name-mode = \"enforcing\"\n");
    assert_eq!(
        pull_candidates(&one, "tool", None).unwrap(),
        ["r1.example/tool"]
    );
}

#[test]
fn a_question_is_asked_when_one_can_be() {
    let c = conf(&format!("{TWO}short-name-mode = \"enforcing\"\n"));
    let mut two = |l: &[String]| {
        assert_eq!(l.len(), 2);
        Ok("2\n".to_owned())
    };
    let got = pull_candidates(&c, "tool:1", Some(&mut two));
    assert_eq!(got.unwrap(), ["r2.example/tool:1"]);
    let mut three = |_: &[String]| Ok("3".to_owned());
    let bad = pull_candidates(&c, "tool", Some(&mut three)).unwrap_err();
    assert!(bad.to_string().contains("none of the 2"), "{bad}");
    let disabled = conf(&format!("{TWO}short-name-mode = \"disabled\"\n"));
    let mut never = |_: &[String]| -> std::io::Result<String> { panic!("asked") };
    let all = pull_candidates(&disabled, "tool", Some(&mut never));
    assert_eq!(all.unwrap().len(), 2);
}

#[test]
fn store_look_up_ends_with_the_name_as_typed() {
    let c = conf(&format!("{TWO}[aliases]\n\"app\" = \"quay.io/t/app\"\n"));
    assert_eq!(
        store_candidates(&c, "tool"),
        ["r1.example/tool", "r2.example/tool", "tool"]
    );
    assert_eq!(store_candidates(&c, "app"), ["quay.io/t/app", "app"]);
    assert_eq!(store_candidates(&RegistriesConf::default(), "abc"), ["abc"]);
}
