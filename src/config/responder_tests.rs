//! Tests of the responder's configuration: where the state goes, how long
//! history is kept.

mod state_path_tests {
    use super::super::*;

    #[test]
    fn state_file_wins_then_the_data_folder_then_the_config_folder() {
        let base = Path::new("/etc/caretaker");
        let data = Path::new("/var/lib/caretaker");
        assert_eq!(
            state_path(Some("/srv/s.db"), Some(data), base),
            PathBuf::from("/srv/s.db")
        );
        assert_eq!(
            state_path(Some("s.db"), Some(data), base),
            base.join("s.db")
        );
        assert_eq!(
            state_path(None, Some(data), base),
            data.join("caretaker-state.db")
        );
        assert_eq!(state_path(None, None, base), base.join(DEFAULT_STATE_FILE));
    }
}

mod retention_tests {
    use std::path::Path;

    use crate::config::Config;

    const DB: &str = "[[database]]\nname = \"a\"\npath = \"/srv/a.db\"\n";

    #[test]
    fn a_history_shorter_than_the_breaker_window_is_refused_where_it_is_written() {
        let text =
            format!("[responder]\nbreaker_window = \"2h\"\nhistory_retention = \"1h\"\n{DB}");
        let errors = Config::parse(Path::new("/c.toml"), &text).expect_err("refused");
        let e = &errors.0[0];
        assert_eq!((e.line, e.column), (Some(3), Some(21)), "{e}");
        assert!(e.to_string().starts_with("/c.toml:3:21: "), "{e}");
        assert!(e.to_string().contains("breaker_window"), "{e}");
    }

    #[test]
    fn a_history_as_long_as_the_window_stays_and_the_default_follows_the_window() {
        let text =
            format!("[responder]\nbreaker_window = \"2h\"\nhistory_retention = \"2h\"\n{DB}");
        let cfg = Config::parse(Path::new("/c.toml"), &text).expect("valid");
        assert_eq!(cfg.responder.history_retention.as_secs(), 7200);
        let text = format!("[responder]\nbreaker_window = \"100d\"\n{DB}");
        let cfg = Config::parse(Path::new("/c.toml"), &text).expect("valid");
        assert_eq!(
            cfg.responder.history_retention,
            cfg.responder.breaker_window
        );
    }
}

mod instance_tests {
    use std::path::Path;

    use crate::config::Config;

    fn parse(responder: &str) -> Result<Config, crate::config::ConfigErrors> {
        Config::parse(
            Path::new("/c.toml"),
            &format!("[[database]]\nname = \"m\"\npath = \"m.db\"\n[responder]\n{responder}\n"),
        )
    }

    #[test]
    fn instance_is_a_list_of_names_and_never_empty() {
        let config = parse("instance = [\"db1:10210\", \"db1.example.com:10210\"]").expect("valid");
        assert_eq!(
            config.responder.instance,
            ["db1:10210", "db1.example.com:10210"]
        );
        assert!(parse("").expect("valid").responder.instance.is_empty());
        for bad in ["instance = []", "instance = [\"\"]"] {
            let errors = parse(bad).expect_err(bad).to_string();
            assert!(errors.contains("responder.instance"), "{errors}");
        }
    }
}
