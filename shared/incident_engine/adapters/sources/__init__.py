"""One parser per alert source: pure functions from a payload to ``Alert``s or a ``Rejected``.

Why not Powertools' parser models (``SnsModel``, ``EventBridgeModel``): they cover only the
envelopes, not the alarm notification inside an SNS message, PagerDuty's events or Alertmanager's
webhook; and a rejection here must name the field the way each sender's own docs do
(``Records[0].Sns.Message.NewStateValue``, ``payload.summary``, ``alerts[2].labels``), bound
sizes and depths before anything is built, and never raise. One small strict reader
(``reader.py``) does that for all three, envelope included, at a fraction of a model's import cost.
"""
