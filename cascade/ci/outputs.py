"""The Action step's outputs (`verified`, `pr-url`, `needs-review`, ...): written whatever
happens, so a later step of the user's workflow can always read them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StepOutputs:
    """The step outputs; written whatever happens, so a later step can always read them."""

    verified: bool = False
    patch_path: str = ""
    proof_path: str = ""
    cost_usd: float = 0.0
    pr_url: str = ""
    predicate_type: str = ""
    predicate_path: str = ""
    workflow: str = ""  # the task's workflow
    needs_review: bool = False  # the verified patch waits for a person's review

    def as_dict(self) -> dict[str, str]:
        return {
            "verified": "true" if self.verified else "false",
            "patch-path": self.patch_path,
            "proof-path": self.proof_path,
            "cost-usd": f"{self.cost_usd:.6f}",
            "pr-url": self.pr_url,
            "predicate-type": self.predicate_type,
            "predicate-path": self.predicate_path,
            "workflow": self.workflow,
            "needs-review": "true" if self.needs_review else "false",
        }
