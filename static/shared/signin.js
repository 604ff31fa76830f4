// The staff sign-in form of the display, the tablet and the admin.
//
//   patch(app, signInForm({ title: t("barista.signinTitle"), notice, error, onSubmit: signIn }));
//   const pin = event.target.elements.pin.value;
import { h } from "/shared/dom.js";
import { t } from "/shared/i18n.js";

/**
 * A PIN form. `notice` is a calm line above it (e.g. "you are signed out"), `error` an alert
 * below the field (wrong PIN, too many attempts, sign-in switched off).
 */
export function signInForm({ title, notice = null, error = null, onSubmit }) {
  return h(
    "form",
    { class: "signin", onsubmit: onSubmit },
    h("h2", {}, title),
    notice && h("p", { class: "notice ok", role: "status", "data-testid": "signin-notice" }, notice),
    h("label", { for: "pin" }, t("signin.pin")),
    h("input", { id: "pin", name: "pin", type: "password", inputmode: "numeric", autocomplete: "current-password", required: true }),
    error && h("p", { class: "notice error", role: "alert", "data-testid": "signin-error" }, error),
    h("button", { type: "submit" }, t("signin.submit")),
  );
}
