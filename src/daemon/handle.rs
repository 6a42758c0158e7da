//! What the web layer may ask of the running daemon ([`AppHandle`]), and the
//! startup line that says which credentials open which endpoints.

use std::sync::Arc;

use super::Runtime;
use crate::config::Config;
use crate::metrics::Snapshot;
use crate::responder::Responder;
use crate::web::auth::Credentials;
use crate::web::security::WebSecurity;
use crate::web::AppHandle;

impl AppHandle for Runtime {
    fn config(&self) -> Arc<Config> {
        Runtime::config(self)
    }
    fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }
    fn ready(&self) -> bool {
        Runtime::ready(self)
    }
    fn credentials(&self) -> Arc<Credentials> {
        Runtime::credentials(self)
    }
    fn responder(&self) -> &Responder {
        &self.responder
    }
    fn web_security(&self) -> Arc<WebSecurity> {
        Runtime::web_security(self)
    }
}

/// Says in the log which endpoints are open, and warns when one token opens both.
pub(super) fn announce_credentials(config: &Config, credentials: &Credentials) {
    if config.web.token_file.is_none() && config.web.api_token_file.is_none() {
        tracing::info!("no web.token_file configured: the webhook and the API answer 403");
    } else if credentials.shared() {
        tracing::warn!("{}", crate::web::auth::SHARED_CREDENTIAL_WARNING);
    }
}
