//! `schema!` reports mistakes as compile errors pointing at the offending tokens.

#[test]
fn schema_macro_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
