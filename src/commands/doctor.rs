//! `kdind doctor`: what the engine and its host offer a cluster, each finding with its fix;
//! exit 1 when something blocks `kdind up`.

use anyhow::Result;

use super::{output, ExitStatus};
use crate::docker::{Engine, EngineInfo};
use crate::doctor::{self, Facts, Finding, Severity};
use crate::provider::host;
use crate::settings::OutputFormat;

pub async fn run(format: OutputFormat) -> Result<ExitStatus> {
    let findings = match Engine::connect().await {
        Ok(engine) => doctor::findings(&facts(&engine).await),
        Err(error) => vec![doctor::unreachable(&error.to_string())],
    };
    match format {
        OutputFormat::Json => output(&format!("{}\n", serde_json::to_string_pretty(&findings)?))?,
        OutputFormat::Table => output(&render(&findings))?,
    }
    let blocked = findings
        .iter()
        .any(|found| found.severity == Severity::Blocking);
    Ok(if blocked {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

async fn facts(engine: &Engine) -> Facts {
    let (server_version, api_version) = engine.versions();
    let info = engine
        .info()
        .await
        .unwrap_or_else(|_| EngineInfo::default());
    let image = host::probe_image(engine).await;
    let (privileged, host) = match &image {
        Ok(Some(image)) => (
            host::privileged_granted(engine, image).await,
            host::probe_host(engine, image, &info.data_root).await,
        ),
        Ok(None) => {
            let why = "no node image on this engine yet to probe with (`kdind build` makes one)";
            (Err(why.to_owned()), Err(why.to_owned()))
        }
        Err(why) => (Err(why.clone()), Err(why.clone())),
    };
    Facts {
        engine: engine.host(),
        server_version: server_version.to_owned(),
        api_version: api_version.to_owned(),
        network: host::network_fact(engine).await,
        info,
        privileged,
        host,
    }
}

/// One finding a line (`severity  check  summary`), its fix indented below it.
pub fn render(findings: &[Finding]) -> String {
    let mut text = String::new();
    for found in findings {
        text.push_str(&format!(
            "{:<9}{:<12}{}\n",
            found.severity.as_str(),
            found.check,
            found.summary
        ));
        if let Some(fix) = &found.fix {
            text.push_str(&format!("{:<21}fix: {fix}\n", ""));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_render_one_a_line_with_the_fix_below() {
        let text = render(&[
            Finding {
                check: "engine",
                severity: Severity::Ok,
                summary: "dockerd 27".to_owned(),
                fix: None,
            },
            Finding {
                check: "disk",
                severity: Severity::Blocking,
                summary: "1.0 GiB free".to_owned(),
                fix: Some("docker system prune".to_owned()),
            },
        ]);
        assert_eq!(
            text,
            "ok       engine      dockerd 27\nblocking disk        1.0 GiB free\n                     fix: docker system prune\n"
        );
    }
}
