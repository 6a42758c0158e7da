use super::*;

fn headers(auth: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(a) = auth {
        h.insert(
            axum::http::header::AUTHORIZATION,
            a.parse().expect("header"),
        );
    }
    h
}

fn one(secret: &str) -> Credentials {
    Credentials {
        webhook: Ok(Token::from_secret(secret)),
        api: None,
    }
}

#[test]
fn only_the_right_bearer_token_passes() {
    let creds = one("0123456789abcdef");
    let uri: Uri = "/hooks/alertmanager".parse().expect("uri");
    let c = |auth: Option<&str>| check(&creds, Scope::Webhook, &headers(auth), &uri);
    assert_eq!(
        c(Some("Bearer 0123456789abcdef")),
        Ok(Credential::WebhookToken)
    );
    assert_eq!(c(Some("Bearer 0123456789abcdeX")), Err(Refusal::Wrong));
    assert_eq!(c(Some("Bearer short")), Err(Refusal::Wrong));
    assert_eq!(c(Some("Basic abc")), Err(Refusal::Missing));
    assert_eq!(c(Some("Bearer")), Err(Refusal::Missing));
    assert_eq!(c(None), Err(Refusal::Missing));
    let none = Credentials::default();
    assert_eq!(
        check(
            &none,
            Scope::Webhook,
            &headers(Some("Bearer 0123456789abcdef")),
            &uri
        ),
        Err(Refusal::NoTokenConfigured)
    );
    let q: Uri = "/hooks/alertmanager?token=0123456789abcdef"
        .parse()
        .expect("uri");
    assert_eq!(
        check(
            &creds,
            Scope::Webhook,
            &headers(Some("Bearer 0123456789abcdef")),
            &q
        ),
        Err(Refusal::TokenInQuery)
    );
}

#[test]
fn the_scheme_name_is_case_insensitive() {
    let creds = one("0123456789abcdef");
    let uri: Uri = "/api/v1/audit".parse().expect("uri");
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let auth = format!("{scheme} 0123456789abcdef");
        assert_eq!(
            check(&creds, Scope::Api, &headers(Some(&auth)), &uri),
            Ok(Credential::WebhookToken),
            "{scheme}"
        );
    }
}

#[test]
fn separate_credentials_open_only_their_own_endpoints() {
    let creds = Credentials {
        webhook: Ok(Token::from_secret("webhook-0123456789")),
        api: Some(Ok(Token::from_secret("api-0123456789abcdef"))),
    };
    let uri: Uri = "/x".parse().expect("uri");
    let c = |scope, auth: &str| check(&creds, scope, &headers(Some(auth)), &uri);
    assert_eq!(
        c(Scope::Webhook, "Bearer webhook-0123456789"),
        Ok(Credential::WebhookToken)
    );
    assert_eq!(
        c(Scope::Api, "Bearer api-0123456789abcdef"),
        Ok(Credential::ApiToken)
    );
    assert_eq!(
        c(Scope::Api, "Bearer webhook-0123456789"),
        Err(Refusal::Wrong)
    );
    assert_eq!(
        c(Scope::Webhook, "Bearer api-0123456789abcdef"),
        Err(Refusal::Wrong)
    );
    assert!(!creds.shared());
    assert!(one("0123456789abcdef").shared());
}

#[test]
fn an_unusable_token_says_why() {
    let creds = Credentials {
        webhook: Err(TokenProblem::TooShort),
        api: None,
    };
    let uri: Uri = "/hooks/alertmanager".parse().expect("uri");
    let refused = check(&creds, Scope::Webhook, &headers(Some("Bearer x")), &uri);
    assert_eq!(refused, Err(Refusal::TokenTooShort));
    assert!(Refusal::TokenTooShort.message().contains("shorter than 16"));
    assert_eq!(Refusal::TokenTooShort.status(), StatusCode::FORBIDDEN);
}
