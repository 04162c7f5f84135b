"""E-mail and SMS contact methods are subscriptions to the notifications topic, filtered on their
recipient: saved with the user, shown with their state, ended when removed or the user disabled.

What moto does (5.x): Subscribe answers an ARN at once for every protocol and records e-mail
subscriptions as confirmed (PendingConfirmation false), where AWS keeps an e-mail one pending
until its recipient clicks the link AWS mails; it delivers nothing to e-mail or SMS endpoints, but
evaluates filter policies (equals-ignore-case included) with its FilterPolicyMatcher. So the
pending state is simulated in moto's backend, and the filter is checked with moto's own matcher
against the attributes the engine really published (as a queue subscribed to the topic got them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import SNSBackend, sns_backends
from moto.sns.utils import FilterPolicyMatcher

from incident_engine.domain.keys import key_part
from local.template import LocalStack
from tests.support import Api, Tap

SMS = "+14155550100"
# 247 characters: too long to sit in a DynamoDB key as it is, so the dedup id holds its hash.
LONG = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 50 + ".com"


def subscriptions(aws: LocalStack) -> dict[tuple[str, str], dict[str, Any]]:
    """The topic's subscriptions other than SQS queues, by (protocol, endpoint), with attributes."""
    sns = boto3.client("sns", region_name=aws.region)
    found = {}
    for sub in sns.list_subscriptions_by_topic(TopicArn=aws.physical["NotificationsTopic"])["Subscriptions"]:
        if sub["Protocol"] in ("email", "sms"):
            attrs = sns.get_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"])["Attributes"]
            found[(sub["Protocol"], sub["Endpoint"])] = attrs
    return found


def user_body(
    email: str = "ann@example.com", sms: str | None = SMS, name: str = "Ann", delay: float = 5
) -> dict[str, Any]:
    methods: list[dict[str, Any]] = [{"type": "email", "address": email, "delay_minutes": delay}]
    if sms:
        methods.insert(0, {"type": "sms", "address": sms})
    return {"name": name, "email": email, "contact_methods": methods}


def backend(aws: LocalStack) -> SNSBackend:
    return sns_backends[DEFAULT_ACCOUNT_ID][aws.region]


@pytest.fixture
def email_needs_confirmation(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make moto behave as AWS does: an e-mail subscription waits for its recipient's click."""
    original = SNSBackend.subscribe

    def subscribe(self: SNSBackend, topic_arn: str, endpoint: str, protocol: str) -> Any:
        sub = original(self, topic_arn, endpoint, protocol)
        if protocol == "email" and not getattr(sub, "clicked", False):
            sub.attributes["PendingConfirmation"] = "true"
        return sub

    monkeypatch.setattr(SNSBackend, "subscribe", subscribe)
    yield


def test_saving_a_user_subscribes_each_email_and_sms_method_filtered_on_its_recipient(
    aws: LocalStack, api: Api
) -> None:
    created = api.ok("POST", "/users", user_body(), expect=201)
    subs = subscriptions(aws)
    assert set(subs) == {("sms", SMS), ("email", "ann@example.com")}
    assert json.loads(subs[("sms", SMS)]["FilterPolicy"]) == {"channel": ["sms"], "recipient": [SMS]}
    assert json.loads(subs[("email", "ann@example.com")]["FilterPolicy"]) == {
        "channel": ["email"],
        "recipient": [{"equals-ignore-case": "ann@example.com"}],
    }
    # and each method names its subscription
    arns = [c["subscription"]["arn"] for c in created["contact_methods"]]
    assert arns == [
        subs[("sms", SMS)]["SubscriptionArn"],
        subs[("email", "ann@example.com")]["SubscriptionArn"],
    ]


def test_an_email_waiting_for_confirmation_says_so_until_its_recipient_confirms(
    aws: LocalStack, api: Api, email_needs_confirmation: None
) -> None:
    # When a user is saved with an e-mail method (AWS mails a confirmation link)
    created = api.ok("POST", "/users", user_body(), expect=201)
    sms, mail = created["contact_methods"]
    # Then the answer says the recipient must confirm it; SMS needs no confirmation
    assert mail["subscription"]["status"] == "pending_confirmation"
    assert (
        "confirm" in mail["subscription"]["message"] and "ann@example.com" in mail["subscription"]["message"]
    )
    assert sms["subscription"]["status"] == "confirmed" and sms["subscription"]["message"] is None
    # When the recipient confirms, reading the user (one or the list) shows it confirmed
    sub = backend(aws).subscriptions[mail["subscription"]["arn"]]
    sub.attributes["PendingConfirmation"] = False
    assert (
        api.ok("GET", f"/users/{created['id']}")["contact_methods"][1]["subscription"]["status"]
        == "confirmed"
    )
    [listed] = api.ok("GET", "/users")["items"]
    assert listed["contact_methods"][1]["subscription"] == {
        "status": "confirmed",
        "arn": mail["subscription"]["arn"],
        "message": None,
    }


def test_the_filter_policy_accepts_exactly_what_is_published_to_its_recipient(
    aws: LocalStack, api: Api, tap: Tap
) -> None:
    # Given Ann reached by SMS and by an address long enough to be hashed inside DynamoDB keys,
    # Bob by e-mail, and a policy paging both at once
    ann = api.ok("POST", "/users", user_body(email=LONG.upper()), expect=201)
    bob = api.ok(
        "POST", "/users", user_body(email="bob@example.com", sms=None, name="Bob", delay=0), expect=201
    )
    # (a bare address in a policy, in capitals, reaches Bob's one subscription too)
    targets = [
        {"type": "user", "email": "Bob@Example.com"},
        {"type": "user", "user_id": ann["id"]},
        {"type": "user", "user_id": bob["id"]},
    ]
    levels = [{"delay_minutes": 0, "targets": targets}]
    api.ok("POST", "/policies", {"name": "p", "is_default": True, "levels": levels}, expect=201)
    inc = api.ok("POST", "/incidents", {"title": "db down", "severity": "P1"}, expect=201)["id"]
    api.ok("POST", f"/incidents/{inc}/resolve", {})
    published = tap.messages()
    # Bob's page and Ann's SMS, then their resolution notices (Ann's e-mail was to wait 5 minutes)
    assert len(published) == 4
    # When each subscription's filter is applied to what SNS was really given
    subs = subscriptions(aws)
    assert LONG in {endpoint for _, endpoint in subs}  # stored lower-case, as the API keeps it

    def accepted(protocol: str, endpoint: str) -> list[tuple[str, str]]:
        policy = json.loads(subs[(protocol, endpoint)]["FilterPolicy"])
        matcher = FilterPolicyMatcher(policy, "MessageAttributes")
        return [
            (m["attributes"]["kind"], m["attributes"]["recipient"])
            for m in published
            if matcher.matches({k: {"Type": "String", "Value": v} for k, v in m["attributes"].items()}, "")
        ]

    # Then each accepts its own recipient's messages and nobody else's
    assert accepted("sms", SMS) == [("page", SMS), ("resolution", SMS)]
    assert sorted(accepted("email", "bob@example.com")) == [
        ("page", "bob@example.com"),
        ("resolution", "bob@example.com"),
    ]
    bob_filter = FilterPolicyMatcher(json.loads(subs[("email", "bob@example.com")]["FilterPolicy"]), None)
    capitals = {
        "channel": {"Type": "String", "Value": "email"},
        "recipient": {"Type": "String", "Value": "Bob@Example.COM"},
    }
    assert bob_filter.matches(capitals, "")
    assert accepted("email", LONG) == []  # her e-mail was still waiting when it was resolved
    # And the long address: hashed in the dedup id, published (and filtered) as itself
    row = next(m for m in published if m["attributes"]["recipient"] == SMS)
    assert row["attributes"]["dedup_id"].endswith(SMS)
    assert key_part(LONG).startswith("sha256:")


def test_the_long_address_is_delivered_when_its_page_goes_out(
    aws: LocalStack, api: Api, tap: Tap, clock
) -> None:
    from tests.support import Timers

    ann = api.ok("POST", "/users", user_body(email=LONG, sms=None), expect=201)
    levels = [{"delay_minutes": 0, "targets": [{"type": "user", "user_id": ann["id"]}]}]
    api.ok("POST", "/policies", {"name": "p", "is_default": True, "levels": levels}, expect=201)
    api.ok("POST", "/incidents", {"title": "db down", "severity": "P1"}, expect=201)
    clock.shift(300)
    Timers(aws).deliver()
    [page] = tap.messages()
    assert page["attributes"]["recipient"] == LONG
    assert page["attributes"]["dedup_id"].endswith(key_part(LONG))
    policy = json.loads(subscriptions(aws)[("email", LONG)]["FilterPolicy"])
    attributes = {k: {"Type": "String", "Value": v} for k, v in page["attributes"].items()}
    assert FilterPolicyMatcher(policy, "MessageAttributes").matches(attributes, "")


def test_removing_a_method_or_disabling_the_user_unsubscribes_and_keeps_the_history(
    aws: LocalStack, api: Api
) -> None:
    created = api.ok("POST", "/users", user_body(), expect=201)
    # When the SMS method is removed
    body = {**user_body(sms=None), "version": 1}
    updated = api.ok("PUT", f"/users/{created['id']}", body)
    # Then its subscription is gone; the e-mail one is the same as before
    assert set(subscriptions(aws)) == {("email", "ann@example.com")}
    assert updated["contact_methods"][0]["subscription"] == created["contact_methods"][1]["subscription"]
    # When the user is disabled
    disabled = api.ok("DELETE", f"/users/{created['id']}")
    # Then nothing is subscribed any more, and the user keeps its methods, marked unsubscribed
    assert subscriptions(aws) == {}
    [mail] = disabled["contact_methods"]
    assert mail["address"] == "ann@example.com" and mail["subscription"]["status"] == "unsubscribed"
    assert api.ok("GET", f"/users/{created['id']}")["contact_methods"] == [mail]


def test_an_address_two_users_share_stays_subscribed_while_either_has_it(aws: LocalStack, api: Api) -> None:
    ann = api.ok("POST", "/users", user_body(email="oncall@example.com", sms=None), expect=201)
    desk = api.ok("POST", "/users", user_body(email="oncall@example.com", sms=None, name="Desk"), expect=201)
    # SNS keeps one subscription per address: both users name the same one
    assert (
        ann["contact_methods"][0]["subscription"]["arn"] == desk["contact_methods"][0]["subscription"]["arn"]
    )
    api.ok("DELETE", f"/users/{ann['id']}")
    assert set(subscriptions(aws)) == {("email", "oncall@example.com")}
    assert (
        api.ok("GET", f"/users/{desk['id']}")["contact_methods"][0]["subscription"]["status"] == "confirmed"
    )
    api.ok("DELETE", f"/users/{desk['id']}")
    assert subscriptions(aws) == {}


def test_an_address_sns_refuses_is_a_422_naming_it_and_nothing_is_saved(
    aws: LocalStack, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.sns.exceptions import SNSInvalidParameter

    def refuse(self: SNSBackend, topic_arn: str, endpoint: str, protocol: str) -> Any:
        raise SNSInvalidParameter(f"Invalid SMS endpoint: {endpoint}")

    monkeypatch.setattr(SNSBackend, "subscribe", refuse)
    status, body = api.call("POST", "/users", user_body())
    assert status == 422 and body["field"] == "contact_methods.0.address"
    assert api.ok("GET", "/users")["items"] == []


def test_an_address_subscribed_by_hand_with_another_filter_is_adopted_not_refused(
    aws: LocalStack, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an operator subscribed Ann's address earlier with a filter of their own
    sns = boto3.client("sns", region_name=aws.region)
    topic = aws.physical["NotificationsTopic"]
    by_hand = sns.subscribe(
        TopicArn=topic,
        Protocol="email",
        Endpoint="ann@example.com",
        Attributes={"FilterPolicy": json.dumps({"recipient": ["ann@example.com"]})},
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    # and SNS, as AWS does, refuses the same endpoint with other attributes
    from moto.sns.exceptions import SNSInvalidParameter

    original = SNSBackend.subscribe

    def strict(self: SNSBackend, topic_arn: str, endpoint: str, protocol: str) -> Any:
        if self._find_subscription(topic_arn, endpoint, protocol):
            raise SNSInvalidParameter(
                "Invalid parameter: Attributes Reason: Subscription already exists with different attributes"
            )
        return original(self, topic_arn, endpoint, protocol)

    monkeypatch.setattr(SNSBackend, "subscribe", strict)
    # When the user is saved, that subscription becomes the method's
    created = api.ok("POST", "/users", user_body(sms=None), expect=201)
    assert created["contact_methods"][0]["subscription"]["arn"] == by_hand
