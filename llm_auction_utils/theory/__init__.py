"""The paper's mathematics: aggregation, preferences, monotonicity, incentives, payments,
sampling and divergences (theory chapter: ``notebooks/theory.md``).

Takes numpy arrays and torch tensors; touches no model and no files.  Shapes:
``dists (..., n, V)``, ``bids (..., n)``; one argument order everywhere:
``(dists, bids, agent, rule, ...)``.
"""

from __future__ import annotations

from .aggregation import (
    RULES,
    AggregationRule,
    bid_path,
    bid_shares,
    get_rule,
    highest_bid,
    linear,
    log_linear,
    log_linear_logprobs,
    others_linear_aggregate,
    rule_name,
)
from .divergences import (
    argmin_on_simplex,
    generalized_kl,
    kl_divergence,
    linear_objective,
    log_linear_objective,
    rlhf_policy,
    tv_distance,
)
from .incentives import (
    RELATIONS,
    consistent_aggregation,
    pair_relations,
    payment_feasibility,
    payment_monotonicity,
    utility_curves,
    verify_incentive_equivalence,
)
from .monotonicity import NotMonotoneError, check_bid_path, check_monotonicity, random_instances
from .payments import (
    critical_payment_curve,
    expected_critical_payment,
    expected_critical_payments,
    kl_allocation,
    kl_preference_payments,
    linear_myerson_payment,
    myerson_payment,
    pay_your_bid,
    payment_rtol,
    switched_mass,
)
from .preferences import (
    comparable,
    preference_violation,
    preferred_region_vertices,
    strictly_prefers,
    violation_amount,
    weakly_prefers,
)
from .sampling import (
    exponential_clock,
    joint_stable_step,
    sample_token,
    stable_sample,
    stable_sample_linear,
    stable_step,
)

__all__ = [
    "AggregationRule", "NotMonotoneError", "RELATIONS", "RULES", "argmin_on_simplex", "bid_path", "bid_shares",
    "check_bid_path", "check_monotonicity", "comparable", "consistent_aggregation", "critical_payment_curve",
    "expected_critical_payment", "expected_critical_payments", "exponential_clock", "generalized_kl", "get_rule", "highest_bid",
    "joint_stable_step",
    "kl_allocation", "kl_divergence", "kl_preference_payments", "linear", "linear_myerson_payment",
    "linear_objective", "log_linear", "log_linear_logprobs", "log_linear_objective", "myerson_payment",
    "others_linear_aggregate", "pair_relations", "pay_your_bid", "payment_feasibility", "payment_rtol", "payment_monotonicity", "preference_violation",
    "preferred_region_vertices", "random_instances", "rlhf_policy", "rule_name", "sample_token", "stable_sample",
    "stable_sample_linear", "stable_step", "strictly_prefers", "switched_mass", "tv_distance", "utility_curves",
    "verify_incentive_equivalence", "violation_amount", "weakly_prefers",
]
