//! `caretaker check-config`: exit 0, or print every error of the file and exit 1.

use std::path::Path;
use std::process::ExitCode;

use crate::backups::names::shared_folders;
use crate::config::{Config, Overrides};
use crate::responder::plan::identities;
use crate::web::auth::{Credentials, SHARED_CREDENTIAL_WARNING};
use crate::web::security::WebSecurity;

pub(super) fn check_config(path: &Path, overrides: &Overrides) -> ExitCode {
    let mut config = match Config::load(path) {
        Ok(config) => config,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            return ExitCode::FAILURE;
        }
    };
    // The daemon refuses tokens it cannot use, so check-config does too.
    let (credentials, problems) = Credentials::load(&config.web);
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("{}: {problem}", path.display());
        }
        return ExitCode::FAILURE;
    }
    // So does it a web config file (TLS, users) it cannot use.
    overrides.apply(&mut config);
    match WebSecurity::load(config.web.config_file.as_deref()) {
        Ok(security) => println!("web: {}", security.describe()),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    }
    if credentials.shared() {
        eprintln!("{}: warning: {SHARED_CREDENTIAL_WARNING}", path.display());
    }
    if !check_probes(path, &config) {
        return ExitCode::FAILURE;
    }
    println!(
        "{}: valid, {} database(s)",
        path.display(),
        config.databases.len()
    );
    for report in &config.discovered {
        println!(
            "discover {:?}: {} database(s)",
            report.label,
            report.databases.len()
        );
        for (name, db) in &report.databases {
            println!("  {name} = {}", db.display());
        }
        for refused in &report.refused {
            eprintln!("{}: error: {refused}", path.display());
        }
    }
    // What the responder answers to; an alert for any other instance is ignored.
    let identities = identities(
        &config.responder.instance,
        sysinfo::System::host_name().as_deref(),
        config.web.listen_address.port(),
    );
    println!("responder instance: {}", identities.join(", "));
    for (dir, names) in shared_folders(&config) {
        eprintln!(
            "{}: warning: databases {} share the backup folder {}: each counts, verifies and prunes only the files named after it",
            path.display(),
            names.join(", "),
            dir.display()
        );
    }
    ExitCode::SUCCESS
}

/// Prepares every `[[query]]` probe on each database that exists, read-only,
/// as the collector will: a statement the seed schema could not check (a
/// table of the application's own) is checked here. Prints every problem;
/// false when there was one.
fn check_probes(path: &Path, config: &Config) -> bool {
    let mut ok = true;
    if config.queries.is_empty() {
        return ok;
    }
    for db in &config.databases {
        if !db.path.exists() {
            println!(
                "database {}: {} does not exist yet; its query probes are checked against the seed schema only",
                db.name,
                db.path.display()
            );
            continue;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let conn = match crate::store::sqlite::open_monitor(&db.path, deadline) {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!(
                    "{}: database {}: cannot open {} to check its query probes: {e}",
                    path.display(),
                    db.name,
                    db.path.display()
                );
                ok = false;
                continue;
            }
        };
        for q in &config.queries {
            if let Err(e) = q.check(&conn) {
                eprintln!(
                    "{}: query {:?} on database {}: {e}",
                    path.display(),
                    q.name,
                    db.name
                );
                ok = false;
            }
        }
    }
    ok
}
