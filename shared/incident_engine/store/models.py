"""PynamoDB item classes. Keys and indexes mirror template.yaml, the one source of truth.

Incidents table (single-table):
  INC#<id> / META           the incident and its escalation cursor (list/facet indexes, sparse DueIndex)
  INC#<id> / EV#<time>#...  timeline: one append-only item per change (its events in order)
  INC#<id> / ESC#<seq>      escalation records, executed | cancelled (the armed one is the cursor)
  INC#<id> / OUT#<dedup>    notification outbox rows (sparse PendingIndex while pending, DueIndex
                            while a delayed contact's page is scheduled)
  COUNTER#<yyyymmdd> / COUNTER   per-day incident number
  DEDUP#<key> / DEDUP       which incident currently holds a dedup key (long keys hashed)
  IDEM#<hash> / IDEM        an Idempotency-Key of POST /incidents and the answer it got
  ENGINE / RECONCILER       the reconciler's last run (its heartbeat, read by GET /health?deep=1)
  MWIN#<window id> / EDGES  a maintenance window's edge still to note on timelines (DueIndex MWDUE#)
  HEARTBEAT / <hb id>       heartbeats, their fencing token and deadline (DueIndex under HBDUE#)
Config table:
  POLICY / <policy id>      escalation policies
  POLICY / #DEFAULT         pointer to the default policy (same partition: one Query reads all)
  SERVICE / <service id>    services; SERVICE / <service id>#KEY#<key id> their integration keys
  CRED#<sha256> / CRED      a credential's principal, looked up by the hash of the secret
  TOKEN / <token id>        API tokens (prefix, scopes, teams, expiry, last use; never the token)
  RATE#<caller> / <minute>  a credential's request count in one minute (TTL-expired)
  WEBHOOK / <webhook id>    registered webhooks (with their signing secrets, never returned)
  USER, TEAM, SCHEDULE, OVERRIDE#<schedule id>   see store/people.py and store/schedules.py
  RULE / <rule id>          routing rules (disabled, never erased, by DELETE)
  MAINT#<service id> / <start>#<window id>   a service's maintenance windows
  SECRET / SIGNING_KEY      the random HMAC key that signs list cursors (store/signing.py)

Index partitions are sharded: `<facet>#<value>#<shard>` with shard = crc32(incident id) % SHARDS,
so no partition key takes every write, and a reader merges the SHARDS partitions newest first.
The list and facet indexes sort by created_key (`<created time>#<id>`), and project only keys plus
severity/service/team: those never change after creation, so an update rewrites an index entry
only when the item enters, leaves or moves within that index (a status change), never on every
write as an ALL projection would; a list page reads the page's items with one BatchGetItem.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    DiscriminatorAttribute,
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection
from pynamodb.models import Model


class JSONText(JSONAttribute):
    """JSON stored as UTF-8 text. PynamoDB's own escapes every non-ASCII character as
    ``\\uXXXX`` (six bytes for one), which can triple an item against DynamoDB's 400 KB."""

    def serialize(self, value: Any) -> str | None:
        if value is None:
            return None
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# Changing SHARDS changes every index key: it needs a backfill of the index key attributes.
SHARDS = 4
# Attributes the list/facet indexes carry besides keys, so that a second filter is applied by the
# Query itself. Only attributes that never change after creation (see the docstring above).
FACET_PROJECTION = ("severity", "service", "team")
SIGNING_KEY_PK = "SECRET"
SIGNING_KEY_SK = "SIGNING_KEY"


def shard_of(incident_id: str) -> int:
    """Stable across processes and Python versions (unlike hash())."""
    return zlib.crc32(incident_id.encode()) % SHARDS


class _IncidentsTable(Model):
    class Meta:
        table_name = "incidents"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class ListIndex(GlobalSecondaryIndex["IncidentItem"]):
    class Meta:
        index_name = "ListIndex"
        projection = IncludeProjection(list(FACET_PROJECTION))

    list_pk = UnicodeAttribute(hash_key=True)
    created_key = UnicodeAttribute(range_key=True)


class StatusIndex(GlobalSecondaryIndex["IncidentItem"]):
    class Meta:
        index_name = "StatusIndex"
        projection = IncludeProjection(list(FACET_PROJECTION))

    status_pk = UnicodeAttribute(hash_key=True)
    created_key = UnicodeAttribute(range_key=True)


class SeverityIndex(GlobalSecondaryIndex["IncidentItem"]):
    class Meta:
        index_name = "SeverityIndex"
        projection = IncludeProjection(list(FACET_PROJECTION))

    severity_pk = UnicodeAttribute(hash_key=True)
    created_key = UnicodeAttribute(range_key=True)


class ServiceIndex(GlobalSecondaryIndex["IncidentItem"]):
    class Meta:
        index_name = "ServiceIndex"
        projection = IncludeProjection(list(FACET_PROJECTION))

    service_pk = UnicodeAttribute(hash_key=True)
    created_key = UnicodeAttribute(range_key=True)


class TeamIndex(GlobalSecondaryIndex["IncidentItem"]):
    class Meta:
        index_name = "TeamIndex"
        projection = IncludeProjection(list(FACET_PROJECTION))

    team_pk = UnicodeAttribute(hash_key=True)
    created_key = UnicodeAttribute(range_key=True)


class ActiveIndex(GlobalSecondaryIndex["IncidentItem"]):
    class Meta:
        index_name = "ActiveIndex"
        projection = IncludeProjection(list(FACET_PROJECTION))

    active_pk = UnicodeAttribute(hash_key=True)
    created_key = UnicodeAttribute(range_key=True)


class DueIndex(GlobalSecondaryIndex["IncidentItem"]):
    class Meta:
        index_name = "DueIndex"
        projection = KeysOnlyProjection()

    due_pk = UnicodeAttribute(hash_key=True)
    due_key = UnicodeAttribute(range_key=True)


class PendingIndex(GlobalSecondaryIndex["OutboxItem"]):
    class Meta:
        index_name = "PendingIndex"
        projection = KeysOnlyProjection()

    pending_pk = UnicodeAttribute(hash_key=True)
    pending_key = UnicodeAttribute(range_key=True)


class IncidentItem(_IncidentsTable):
    incident_id = UnicodeAttribute()
    title = UnicodeAttribute()
    description = UnicodeAttribute(null=True)
    severity = UnicodeAttribute()
    status = UnicodeAttribute()
    service = UnicodeAttribute(null=True)
    service_id = UnicodeAttribute(null=True)
    team = UnicodeAttribute(null=True)
    source = UnicodeAttribute(null=True)
    labels = JSONText(null=True)
    dedup_key = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    lifecycle = JSONText(null=True)  # who/when of ack, resolve, cancel, snooze
    escalation = JSONText(null=True)
    token = UnicodeAttribute(null=True)
    due_at = UnicodeAttribute(null=True)
    paged = JSONText(null=True)
    scheduled = JSONText(null=True)  # delayed pages waiting: [{dedup_id, channel, address, due_at}]
    version = NumberAttribute()
    change_nonce = UnicodeAttribute(null=True)  # the Change that wrote this version (commit retries)
    # alerts in (issue 9): absent on incidents opened by hand
    alert_count = NumberAttribute(null=True)
    last_seen_at = UnicodeAttribute(null=True)
    latest_alert = JSONText(null=True)  # bounded by the parsers (MAX_RAW_BYTES)
    previous_incident_id = UnicodeAttribute(null=True)
    suppressed = BooleanAttribute(null=True)
    routing = JSONText(null=True)  # {"assignees": [..], "runbooks": [..]} that routing rules gave
    repeats = JSONText(null=True)  # the open run of repeated alerts: {first_at, version, count}
    # index keys: list/status/severity always; service/team when set; active_pk while not
    # terminal; due_pk/due_key only while a timer is armed
    list_pk = UnicodeAttribute()
    status_pk = UnicodeAttribute()
    severity_pk = UnicodeAttribute()
    service_pk = UnicodeAttribute(null=True)
    team_pk = UnicodeAttribute(null=True)
    active_pk = UnicodeAttribute(null=True)
    created_key = UnicodeAttribute()
    due_pk = UnicodeAttribute(null=True)
    due_key = UnicodeAttribute(null=True)

    list_index = ListIndex()
    status_index = StatusIndex()
    severity_index = SeverityIndex()
    service_index = ServiceIndex()
    team_index = TeamIndex()
    active_index = ActiveIndex()
    due_index = DueIndex()


class TimelineItem(_IncidentsTable):
    """One change's timeline: a single event as type/actor/data, or, when the change recorded
    several, all of them in order under ``events`` (each {type, actor, data?}), written once and
    never changed. One item per change rather than per event: each item of a transaction costs
    two write units per started KB, and a change's events are a few hundred bytes together."""

    incident_id = UnicodeAttribute()
    at = UnicodeAttribute()
    type = UnicodeAttribute(null=True)
    actor = UnicodeAttribute(null=True)
    data = JSONText(null=True)
    events = JSONText(null=True)


class EscalationRecordItem(_IncidentsTable):
    incident_id = UnicodeAttribute()
    seq = NumberAttribute()
    level = NumberAttribute()
    loop = NumberAttribute()
    status = UnicodeAttribute()
    scheduled_at = UnicodeAttribute()
    executed_at = UnicodeAttribute(null=True)
    cancelled_at = UnicodeAttribute(null=True)
    targets = JSONText()
    recipients = JSONText(null=True)


class OutboxItem(_IncidentsTable):
    # The incident id and dedup id are the key's (pk INC#<id>, sk OUT#<dedup id>); rows written
    # before ``body`` existed also carry them, their subject, message and attributes as columns.
    incident_id = UnicodeAttribute(null=True)
    dedup_id = UnicodeAttribute(null=True)
    kind = UnicodeAttribute()
    recipient = UnicodeAttribute()
    channel = UnicodeAttribute()
    subject = UnicodeAttribute(null=True)
    # The page's subject, text and SNS attributes, zlib-compressed together: a rendered page is
    # about 1.6 KB of template text, and every started KB of a row costs a write unit, twice in a
    # transaction (docs/storage.md).
    body = BinaryAttribute(null=True, legacy_encoding=False)
    message = UnicodeAttribute(null=True)
    attributes = JSONText(null=True)
    level = NumberAttribute(null=True)
    loop = NumberAttribute(null=True)
    # pending | sent | superseded | parked; webhooks then delivered | retrying | failed;
    # scheduled (a delayed contact) before pending
    status = UnicodeAttribute()
    created_at = UnicodeAttribute()
    sent_at = UnicodeAttribute(null=True)
    attempts = NumberAttribute(null=True)  # failed publish attempts
    last_error = UnicodeAttribute(null=True)
    delivery_attempts = NumberAttribute(null=True)  # webhook POSTs made by the sender
    last_http_status = NumberAttribute(null=True)
    pending_pk = UnicodeAttribute(null=True)
    pending_key = UnicodeAttribute(null=True)
    # A delayed contact's page: due time, and while ``scheduled`` the same sparse DueIndex keys as
    # an incident's armed timer (the reconciler re-arms both from that one index).
    due_at = UnicodeAttribute(null=True)
    due_pk = UnicodeAttribute(null=True)
    due_key = UnicodeAttribute(null=True)

    pending_index = PendingIndex()


class CounterItem(_IncidentsTable):
    value = NumberAttribute(default=0)


class DedupItem(_IncidentsTable):
    """Which incident holds a dedup key. Claimed (with a nonce, no incident yet) before the
    incident number is drawn, so a trigger that loses the race never burns a number."""

    incident_id = UnicodeAttribute(null=True)
    active = BooleanAttribute()
    claimed_at = UnicodeAttribute()
    nonce = UnicodeAttribute(null=True)
    dedup_key = UnicodeAttribute(null=True)


class IdempotencyItem(_IncidentsTable):
    """A client's Idempotency-Key for a create: claimed first, then bound to the answer."""

    request_hash = UnicodeAttribute()
    nonce = UnicodeAttribute()
    claimed_at = UnicodeAttribute()
    expires_at = UnicodeAttribute()
    incident_id = UnicodeAttribute(null=True)
    status_code = NumberAttribute(null=True)


class ConfigItem(Model):
    """Policies and the default pointer share one partition, so one Query reads both."""

    class Meta:
        table_name = "config"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = DiscriminatorAttribute()


class PolicyItem(ConfigItem, discriminator="policy"):
    name = UnicodeAttribute()
    body = JSONText()  # levels, repeat, filters
    enabled = BooleanAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    version = NumberAttribute()


class DefaultPolicyItem(ConfigItem, discriminator="default_policy"):
    policy_id = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute()


class ServiceItem(ConfigItem, discriminator="service"):
    """SERVICE / <service id>: one partition, so one Query reads every service (alarm routing)."""

    name = UnicodeAttribute()
    body = JSONText()  # team_id, policy_id, default_severity, alarm_name_prefixes, auto_resolve, ...
    enabled = BooleanAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    version = NumberAttribute()


class IntegrationKeyItem(ConfigItem, discriminator="integration_key"):
    """SERVICE / <service id>#KEY#<key id>: the list entry of a key (prefix, never the key)."""

    service_id = UnicodeAttribute()
    key_id = UnicodeAttribute()
    prefix = UnicodeAttribute()
    secret_hash = UnicodeAttribute()  # SHA-256 of a 128-bit random key: not reversible
    created_at = UnicodeAttribute()
    revoked_at = UnicodeAttribute(null=True)


class CredentialItem(ConfigItem, discriminator="credential"):
    """CRED#<sha256 of the secret> / CRED: what the authorizer looks a presented secret up by."""

    principal_kind = UnicodeAttribute()  # integration | token
    name = UnicodeAttribute()
    service_id = UnicodeAttribute(null=True)
    key_id = UnicodeAttribute()
    revoked = BooleanAttribute()
    created_at = UnicodeAttribute()
    # an API token's (absent on integration keys)
    scopes = JSONText(null=True)
    team_ids = JSONText(null=True)
    expires_at = UnicodeAttribute(null=True)


class ApiTokenItem(ConfigItem, discriminator="api_token"):
    """TOKEN / <token id>: the list entry of an API token (its prefix, never the token)."""

    name = UnicodeAttribute()
    prefix = UnicodeAttribute()
    secret_hash = UnicodeAttribute()  # SHA-256 of 256 random bits: not reversible
    scopes = JSONText()
    team_ids = JSONText(null=True)
    created_at = UnicodeAttribute()
    created_by = UnicodeAttribute()
    expires_at = UnicodeAttribute(null=True)
    revoked_at = UnicodeAttribute(null=True)
    last_used_at = UnicodeAttribute(null=True)  # written at most once a minute (by the authorizer)


class RateWindowItem(ConfigItem, discriminator="rate_window"):
    """RATE#<caller> / <minute>: requests a credential made in one minute (the per-token limit).
    DynamoDB's TTL removes it once ``ttl`` (epoch seconds) has passed."""

    hits = NumberAttribute()
    ttl = NumberAttribute()


class WebhookItem(ConfigItem, discriminator="webhook"):
    """WEBHOOK / <webhook id>: a registered receiver and the secret its requests are signed with."""

    name = UnicodeAttribute()
    url = UnicodeAttribute()
    webhook_kind = UnicodeAttribute()  # generic | slack
    secret = UnicodeAttribute()
    enabled = BooleanAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    version = NumberAttribute()


class ReconcilerRunItem(_IncidentsTable):
    """ENGINE / RECONCILER: when the reconciler last ran and what it repaired (GET /health?deep=1).
    Overwritten in place by a conditional write that only moves it forward: it is a status, not
    history (the runs themselves are the ReconcilerRuns metric)."""

    last_run_at = UnicodeAttribute()
    timers_rearmed = NumberAttribute()
    notifications_republished = NumberAttribute()


class HeartbeatDueIndex(GlobalSecondaryIndex["HeartbeatItem"]):
    """The incidents' DueIndex, declared again for heartbeat items (their HBDUE# partitions)."""

    class Meta:
        index_name = "DueIndex"
        projection = KeysOnlyProjection()

    due_pk = UnicodeAttribute(hash_key=True)
    due_key = UnicodeAttribute(range_key=True)


class HeartbeatItem(_IncidentsTable):
    """HEARTBEAT / <heartbeat id>: one partition lists them all. Kept beside the incidents, not in
    the config table, because its armed timer sits in the same sparse DueIndex (under
    ``HBDUE#<shard>`` partitions), so the reconciler finds lost heartbeat timers in O(due)."""

    heartbeat_id = UnicodeAttribute()
    name = UnicodeAttribute()
    service_id = UnicodeAttribute()
    interval_minutes = NumberAttribute()
    enabled = BooleanAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    version = NumberAttribute()
    state = JSONText()  # status, deadline, token, last ping, outage, sync (domain/heartbeats.py)
    due_pk = UnicodeAttribute(null=True)
    due_key = UnicodeAttribute(null=True)

    due_index = HeartbeatDueIndex()


class WindowEdgesDueIndex(GlobalSecondaryIndex["WindowEdgesItem"]):
    class Meta:
        index_name = "DueIndex"
        projection = KeysOnlyProjection()

    due_pk = UnicodeAttribute(hash_key=True)
    due_key = UnicodeAttribute(range_key=True)


class WindowEdgesItem(_IncidentsTable):
    """MWIN#<window id> / EDGES: which edge of a maintenance window is still to be noted on the
    timelines it touches, due in the DueIndex (``MWDUE#<shard>``) until both are noted."""

    window_id = UnicodeAttribute()
    service_id = UnicodeAttribute()
    start = UnicodeAttribute()
    end = UnicodeAttribute()
    reason = UnicodeAttribute()
    created_at = UnicodeAttribute()
    next_edge = UnicodeAttribute(null=True)  # start | end; None once both are noted
    due_pk = UnicodeAttribute(null=True)
    due_key = UnicodeAttribute(null=True)

    due_index = WindowEdgesDueIndex()


INCIDENT_MODELS: tuple[type[Model], ...] = (
    _IncidentsTable,
    IncidentItem,
    TimelineItem,
    EscalationRecordItem,
    OutboxItem,
    CounterItem,
    DedupItem,
    IdempotencyItem,
    HeartbeatItem,
    ReconcilerRunItem,
    WindowEdgesItem,
)


class RoutingRuleItem(ConfigItem, discriminator="routing_rule"):
    """RULE / <rule id>: one partition, so one Query reads every rule an alert runs through."""

    name = UnicodeAttribute()
    body = JSONText()  # the rule document (domain/routing_documents.py rule_document)
    enabled = BooleanAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    version = NumberAttribute()


class MaintenanceWindowItem(ConfigItem, discriminator="maintenance_window"):
    """MAINT#<service id> / <start>#<window id>: one Query reads a service's windows in time order."""

    window_id = UnicodeAttribute()
    service_id = UnicodeAttribute()
    start = UnicodeAttribute()
    end = UnicodeAttribute()
    reason = UnicodeAttribute()
    created_at = UnicodeAttribute()


class SigningKeyItem(ConfigItem, discriminator="signing_key"):
    secret = UnicodeAttribute()  # hex; read only by store/signing.py


CONFIG_MODELS: tuple[type[Model], ...] = (
    ConfigItem,
    PolicyItem,
    DefaultPolicyItem,
    ServiceItem,
    IntegrationKeyItem,
    CredentialItem,
    ApiTokenItem,
    RateWindowItem,
    WebhookItem,
    RoutingRuleItem,
    MaintenanceWindowItem,
    SigningKeyItem,
)


def open_connections() -> None:
    """Create each item class's DynamoDB client now (PynamoDB makes one per class, on first use)."""
    for model in (*INCIDENT_MODELS, *CONFIG_MODELS, *_subclasses(ConfigItem)):
        _ = model._get_connection().connection.client


def _subclasses(model: type[Model]) -> list[type[Model]]:
    found = []
    for sub in model.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def bind_tables(incidents_table: str, config_table: str, region: str, host: str | None) -> None:
    """Point every item class at the deployed tables. Safe to call again with new names."""
    # Item classes of other modules (people, schedules) subclass ConfigItem and share its Meta, so
    # the loop below binds them; their cached connections are dropped here, on every bind, since
    # no list of models outside this module (tests, benchmarks) knows to forget them.
    for model in _subclasses(ConfigItem):
        if model not in CONFIG_MODELS:
            model._connection = None
    for models, name in ((INCIDENT_MODELS, incidents_table), (CONFIG_MODELS, config_table)):
        for model in models:
            meta: Any = model.Meta
            if (
                meta.table_name != name
                or getattr(meta, "region", None) != region
                or getattr(meta, "host", None) != host
            ):
                meta.table_name = name
                meta.region = region
                meta.host = host
                model._connection = None
