"""``erpsync sim``: run the Centra simulator."""

from __future__ import annotations

import sys

import click


@click.command("sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", type=int, default=8765, show_default=True, help="TCP port (0 = any free port)")
@click.option("--soap-path", default="/ams/system/service/module/soap/api", show_default=True,
              help="path of the SOAP endpoint (the WSDL is this path + ?wsdl)")
@click.option("--soap-user", default="erp-user", show_default=True, help="SOAP login username")
@click.option("--soap-password", default="s3cret", show_default=True, help="SOAP login password")
@click.option("--token", default="sim-token", show_default=True, help="GraphQL Bearer token with every permission")
@click.option("--token-permissions", "token_perms", multiple=True, metavar="TOKEN=PERM[,PERM…]",
              help="an extra token with only these permissions, e.g. ro=Product:read (repeatable)")
@click.option("--tier", type=click.Choice(["growth", "enhanced", "high_volume", "enterprise", "custom"]),
              default="growth", show_default=True, help="quota tier (PROTOCOL.md §2.1)")
@click.option("--limit", "limits", multiple=True, metavar="TYPE:INTERVAL=N",
              help="override one bucket, e.g. MUTATION_COUNT:ONE_HOUR=100 (repeatable; all six for --tier custom)")
@click.option("--seed", type=int, default=1, show_default=True, help="seed of the generated data and faults")
@click.option("--time-scale", type=float, default=1.0, show_default=True,
              help="simulated seconds per real second (e.g. 60: an hour window passes in a minute)")
@click.option("--time-epoch", type=float, default=None,
              help="Unix time at which scaled time equals real time (default: start time)")
@click.option("--retry-after-format", type=click.Choice(["seconds", "unix", "http-date"]), default="seconds",
              show_default=True, help="format of Retry-After on 429")
@click.option("--generate-rate", type=float, default=0.0, show_default=True,
              help="generated SOAP events per second in the background (0 = off)")
@click.option("--initial-events", type=int, default=0, show_default=True, help="events generated at start")
@click.option("--other-integration-share", type=float, default=0.0, show_default=True,
              help="share (0–1) of every quota bucket spent by a simulated other integration")
@click.option("--batch-failure", type=click.Choice(["reject", "skip"]), default="reject", show_default=True,
              help="one bad item in a batch mutation: reject the whole batch, or skip it with a warning")
@click.option("--prices-batch-limit", type=click.Choice(["total", "per_entry"]), default="total", show_default=True,
              help="[open] setPricesBatch takes 100 product prices in total, or 100 per pricelist entry")
@click.option("--latency-base", "latency_base_seconds", type=float, default=0.0, show_default=True,
              help="seconds every mutation takes (real time, whatever --time-scale)")
@click.option("--latency-per-item", "latency_per_item_seconds", type=float, default=0.0, show_default=True,
              help="seconds per batch item of a mutation, real time whatever --time-scale "
                   "(e.g. 0.002: 1,000 stock levels take 2 s)")
@click.option("--timeout-items", type=int, default=None,
              help="a mutation with more batch items than this times out: HTTP 499, nothing applied")
@click.option("--gql-first-event-id", type=int, default=1, show_default=True,
              help="first id of the GraphQL events queue; e.g. 3000000000 serves ids beyond 32 bits")
@click.option("--state-file", type=click.Path(dir_okay=False), default=None,
              help="load state from this JSON file at start (if it exists) and save it at stop")
@click.option("--autosave-seconds", type=float, default=5.0, show_default=True,
              help="with --state-file: also save this often (a crash loses at most this much)")
@click.option("--store-timezone", default="Europe/Stockholm", show_default=True,
              help="the Centra store's time zone: SOAP event dates without an offset are in it")
@click.option("--token-ttl", "token_ttl", type=float, default=None,
              help="tokens expire (403) this many simulated seconds after start (default: never)")
@click.option("--soap-action-check/--no-soap-action-check", default=True, show_default=True,
              help="a missing or wrong SOAPAction header is a Client fault")
@click.option("--unknown-ack", type=click.Choice(["ignore", "fault"]), default="ignore", show_default=True,
              help="[open] events_Done with an unknown or already acked id: ignore it, or answer a fault")
@click.option("--update-response", type=click.Choice(["result", "ok"]), default="result", show_default=True,
              help="[open] answer of *_Update: result{success,errors,notices}, or <…UpdateResponse>OK")
@click.option("--schema-rename", "schema_renames", multiple=True, metavar="TYPE.FIELD=NEW",
              help="serve a schema that differs from the contract, e.g. Pricelist.currencyIsoCode=currency "
                   "(repeatable; for erpsync check)")
@click.option("--webhook-url", default=None,
              help="POST Centra-style signed webhooks (PROTOCOL.md §2.3) here when events are emitted")
@click.option("--webhook-secret", default="sim-webhook-secret", show_default=True,
              help="secret the webhooks are signed with (bad ones on request: POST /_sim/webhook)")
@click.option("--capture-outcome", type=click.Choice(["success", "pending", "failed"]), default="success",
              show_default=True, help="how a shipment capture ends (per order: POST /_sim/orders/<n>/capture)")
@click.option("--capture-failed-probability", type=float, default=0.0, show_default=True,
              help="share (0–1) of captures that fail (seeded)")
@click.option("--capture-pending-probability", type=float, default=0.0, show_default=True,
              help="share (0–1) of captures left PENDING at an asynchronous payment provider (seeded)")
@click.option("--capture-pending-seconds", type=float, default=5.0, show_default=True,
              help="a PENDING capture becomes captured this many simulated seconds later")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING"]), default="INFO", show_default=True)
def sim_cmd(host: str, port: int, soap_path: str, soap_user: str, soap_password: str, token: str,
            token_perms: tuple[str, ...], tier: str, limits: tuple[str, ...], seed: int, time_scale: float,
            time_epoch: float | None, retry_after_format: str, generate_rate: float, initial_events: int,
            other_integration_share: float, batch_failure: str, prices_batch_limit: str,
            latency_base_seconds: float, latency_per_item_seconds: float, timeout_items: int | None,
            gql_first_event_id: int, state_file: str | None,
            autosave_seconds: float, store_timezone: str, token_ttl: float | None, soap_action_check: bool,
            unknown_ack: str, update_response: str, schema_renames: tuple[str, ...], webhook_url: str | None,
            webhook_secret: str, capture_outcome: str, capture_failed_probability: float,
            capture_pending_probability: float, capture_pending_seconds: float, log_level: str) -> None:
    """Run the Centra simulator (SOAP event queue + GraphQL Integration API with quota and faults).

    Quick start, no flags: SOAP at http://127.0.0.1:8765/ams/system/service/module/soap/api (login
    erp-user / s3cret), GraphQL at http://127.0.0.1:8765/graphql (Bearer sim-token), state at
    GET /_sim/state, fault injection at POST /_sim/faults. Stops cleanly on SIGINT/SIGTERM.
    """
    from erpsync.logs import configure_logging
    from erpsync.sim.runner import serve
    from erpsync.sim.server import SimOptions

    configure_logging(log_level, "auto", stream=sys.stderr)
    try:
        parsed_limits = {k.strip(): int(v) for k, v in (item.split("=", 1) for item in limits)}
        tokens = {t.strip(): frozenset(p.strip() for p in perms.split(",") if p.strip())
                  for t, perms in (item.split("=", 1) for item in token_perms)}
        options = SimOptions(
            host=host, port=port, soap_path=soap_path, soap_user=soap_user, soap_password=soap_password,
            token=token, tokens=tokens, tier=tier, limits=parsed_limits or None, seed=seed, time_scale=time_scale,
            time_epoch=time_epoch, retry_after_format=retry_after_format, generate_rate=generate_rate,
            initial_events=initial_events, other_integration_share=other_integration_share,
            batch_failure=batch_failure, prices_batch_limit=prices_batch_limit,
            latency_base_seconds=latency_base_seconds, latency_per_item_seconds=latency_per_item_seconds,
            timeout_items=timeout_items, gql_first_event_id=gql_first_event_id,
            state_file=state_file, autosave_seconds=autosave_seconds,
            store_timezone=store_timezone, token_ttl_seconds=token_ttl, soap_action_check=soap_action_check,
            unknown_ack=unknown_ack, update_response=update_response, webhook_url=webhook_url,
            webhook_secret=webhook_secret, schema_renames=schema_renames, capture_outcome=capture_outcome,
            capture_failed_probability=capture_failed_probability,
            capture_pending_probability=capture_pending_probability,
            capture_pending_seconds=capture_pending_seconds)
        options.gql_options()  # validate tier/limits/share now, with a readable message
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    serve(options, click.echo)
