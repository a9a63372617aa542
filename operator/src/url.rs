//! URL forms, in one place: hosts that take a path appended (`https://login.example/`) end with a
//! slash, bases and audiences that a path or `/.default` is joined to do not.

/// `url` ending with exactly one `/` (an authority host as the Azure SDKs read `AZURE_AUTHORITY_HOST`).
pub fn with_slash(url: &str) -> String {
    format!("{}/", without_slash(url))
}

/// `url` without trailing slashes (a base, an audience, a FHIR server URL).
pub fn without_slash(url: &str) -> &str {
    url.trim_end_matches('/')
}

/// `base` and `path` joined by exactly one `/`.
pub fn join(base: &str, path: &str) -> String {
    format!("{}/{}", without_slash(base), path.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_slash_whatever_the_input_has() {
        assert_eq!(
            with_slash("https://login.example"),
            "https://login.example/"
        );
        assert_eq!(
            with_slash("https://login.example//"),
            "https://login.example/"
        );
        assert_eq!(
            without_slash("https://fhir.example/"),
            "https://fhir.example"
        );
        assert_eq!(
            join("https://fhir.example/", "/.default"),
            "https://fhir.example/.default"
        );
        assert_eq!(
            join("https://a/t", ".well-known/x"),
            "https://a/t/.well-known/x"
        );
    }
}
