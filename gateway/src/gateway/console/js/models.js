// The model picker of the Detect view, filled from GET /api/v1/models (what Triton serves).
// The default model is preselected; a model that is not ready is listed but disabled, with
// Triton's state, so nobody picks it and gets a 503.

import { request } from "./api.js";
import { byId, el, guarded } from "./dom.js";

const MODELS = "api/v1/models";

export class ModelPicker {
  /** `select`: the list to fill (the Detect view's, or a job's "Run again" form's). */
  constructor(select = byId("model")) {
    this.select = select;
    this.loaded = false;
  }

  /** Fill the list once per sign-in (again when asked: a model may have been added). */
  async load({ force = false } = {}) {
    if (this.loaded && !force) return;
    const listed = await guarded(() => request(MODELS));
    if (!listed) return;
    const chosen = this.select.value;
    this.select.replaceChildren(
      ...listed.items.map((model) =>
        el(
          "option",
          {
            value: model.name,
            disabled: !model.ready,
            selected: chosen ? model.name === chosen : model.default,
            dataset: { precision: model.precision, device: model.device },
          },
          `${model.name} (${model.precision}, ${model.device}${model.default ? ", default" : ""}` +
            `${model.ready ? "" : `, ${model.state.toLowerCase()}`})`,
        ),
      ),
    );
    this.select.dataset.loaded = "true";
    this.loaded = true;
  }

  /** The chosen model's name, or "" before the list arrived (the server's default). */
  value() {
    return this.loaded ? this.select.value : "";
  }

  /** Forget the list (after sign-out). */
  reset() {
    this.select.replaceChildren();
    this.select.dataset.loaded = "false";
    this.loaded = false;
  }
}
