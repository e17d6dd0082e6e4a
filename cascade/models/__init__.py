"""The model layer: `LitellmModel` (every provider through litellm, plus `replay/` cassettes),
`build_model` for a configured rung, and `Recorder` for writing cassettes. Importing this
package does not import litellm."""

from cascade.models.litellm_model import LitellmModel, build_model
from cascade.models.recording import Recorder, as_replay, replay_model

__all__ = ["LitellmModel", "Recorder", "as_replay", "build_model", "replay_model"]
