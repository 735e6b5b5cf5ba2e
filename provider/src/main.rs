//! The `terraform-provider-idis` binary: Terraform starts it and speaks
//! tfplugin5 to it. Run by hand it explains that and exits 1.

use std::process::ExitCode;

use terraform_provider_idis::protocol::handshake::{self, HandshakeError, Mode};
use terraform_provider_idis::protocol::server::panic_message;
use terraform_provider_idis::provider::IdisProvider;
use terraform_provider_idis::{actions, logging, VERSION};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-version") {
        println!(
            "terraform-provider-idis {VERSION} (plugin protocol {})",
            handshake::PROTOCOL_VERSION
        );
        return ExitCode::SUCCESS;
    }
    if args.first().map(String::as_str) == Some("dashboard-body") {
        return dashboard_body();
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "{}\n\nUsage: terraform-provider-idis [--version | --debug]\n       terraform-provider-idis drill restore-check|failover|dr-promote --environment NAME [--region REGION] [--instance-class CLASS] [--backup-retention-days DAYS]\n\n`drill` runs the idis_restore_check, idis_failover_drill or idis_dr_promote action outside Terraform\n(for Terraform 1.11, which has no actions), with AWS settings from the environment.",
            handshake::NOT_BY_HAND
        );
        return ExitCode::SUCCESS;
    }
    if args.first().map(String::as_str) == Some("drill") {
        return drill(&args[1..]);
    }
    let mode = if args.iter().any(|a| a == "--debug") {
        Mode::Debug
    } else {
        match handshake::negotiate(|k| std::env::var(k).ok()) {
            Ok(mode) => mode,
            Err(e @ HandshakeError::NotByTerraform) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                logging::error(&e.to_string());
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    };

    // A panic is turned into a diagnostic by the server; the hook only
    // makes sure it is logged in Terraform's format, not as raw text.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        logging::error(&format!(
            "panic{location}: {}",
            panic_message(info.payload())
        ));
    }));

    // An environment apply polls seven components' AWS SDK futures at
    // once; in debug builds their frames exceed tokio's 2 MiB default.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(16 * 1024 * 1024)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("terraform-provider-idis: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(handshake::serve(mode, IdisProvider::new()));
    // A drill stopped by Terraform finishes its cleanup before the
    // process ends (go-plugin waits two seconds after Shutdown).
    runtime.block_on(actions::settle(std::time::Duration::from_secs(2)));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            logging::error(&e.to_string());
            eprintln!("terraform-provider-idis: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Hidden: prints the CloudWatch dashboard body the provider would write
/// for a planned `idis_environment`, whose values (`terraform show -json`'s
/// `planned_values` of the resource) arrive on stdin. `make docs` draws
/// the docs' picture of the dashboard from it, with no AWS involved.
fn dashboard_body() -> ExitCode {
    use std::io::Read;
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("terraform-provider-idis dashboard-body: cannot read stdin: {e}");
        return ExitCode::FAILURE;
    }
    let planned = match serde_json::from_str(&input) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("terraform-provider-idis dashboard-body: stdin is not JSON: {e}");
            return ExitCode::FAILURE;
        }
    };
    match terraform_provider_idis::components::dashboard::planned_body(&planned) {
        Ok(body) => {
            println!("{body}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("terraform-provider-idis dashboard-body: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `terraform-provider-idis drill ...`: the drills without Terraform.
fn drill(args: &[String]) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(16 * 1024 * 1024)
        .build()
    {
        Ok(rt) => ExitCode::from(rt.block_on(actions::cli::main(args))),
        Err(e) => {
            eprintln!("terraform-provider-idis: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}
