"""Retention policies: one TOML file per data category, and the engine that applies them.

Each policy states how long a category is kept (``period``), what starts the clock
(``trigger``), what happens on expiry (``action``: delete or anonymise), its legal basis and
purpose, and, where erasure retains the category under an Art. 17(3) exception, how long
(``retain_after_erasure``). The data map names each category's policy; these files are the only
place a period is written.
"""

from retention_policies.policies import Period, Policy, PolicyError, load_policies, policies

__all__ = ["Period", "Policy", "PolicyError", "load_policies", "policies"]
