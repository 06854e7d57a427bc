"""Request priority classes shared by the rate-limit budget and its callers."""

import enum


class Priority(enum.IntEnum):
    """Lower value = more urgent. CRITICAL protects open positions (cancel/replace stops),
    HIGH places orders, MEDIUM synchronises state, LOW is health and polling."""

    CRITICAL = 0
    HIGH = 1
    MEDIUM = 2
    LOW = 3
