"""A scripted model: answers from a script instead of a provider, and keeps every prompt it was
shown (and the call's params) so a test can read what the engine sent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cascade.errors import ModelError
from cascade.records import CallRole, Completion, CompletionParams, Message, Usage

Answer = str | ModelError
# (task id, attempt) answers a fix or reproduce call; (task id, attempt, role) only that role's.
AnswerKey = tuple[str, int] | tuple[str, int, CallRole]
DEFAULT_USAGE = Usage(prompt_tokens=100, completion_tokens=50)


class ScriptedModel:
    """Answers from a script: `answers[(task_id, attempt, role)]`, else `answers[(task_id,
    attempt)]` (never for a review: a review is not served a fix's answer), else in order from
    `sequence`. A raised `ModelError` in the script is raised as the provider fault it stands
    for."""

    def __init__(
        self,
        name: str,
        *,
        sequence: Sequence[Answer] = (),
        answers: Mapping[AnswerKey, Answer] | None = None,
        cost_usd: float = 0.001,
        usage: Usage = DEFAULT_USAGE,
    ) -> None:
        self.name = name
        self._sequence = list(sequence)
        self._answers: dict[AnswerKey, Answer] = dict(answers or {})
        self.cost_usd = cost_usd
        self.usage = usage
        self.prompts: list[list[Message]] = []
        self.calls: list[CompletionParams] = []  # each call's params, beside its prompt

    async def complete(self, messages: Sequence[Message], params: CompletionParams) -> Completion:
        self.prompts.append(list(messages))
        self.calls.append(params)
        key: AnswerKey = (params.task_id, params.attempt)
        keyed: AnswerKey = (params.task_id, params.attempt, params.role)
        if keyed in self._answers:
            answer = self._answers[keyed]
        elif key in self._answers and params.role != "review":
            answer = self._answers[key]
        elif self._sequence:
            answer = self._sequence.pop(0)
        else:
            raise ModelError(f"{self.name}: the script has no answer for {keyed}")
        if isinstance(answer, ModelError):
            raise answer
        return Completion(text=answer, usage=self.usage, cost_usd=self.cost_usd, model=self.name)
