// The staff sign-in form of the display, the tablet and the admin, and signing out.
//
//   patch(app, signInForm({ title: t("barista.signinTitle"), notice, error, onSubmit: signIn }));
//   if (await signOut(state, { say, redraw: renderControls, forget: stopLive })) render();
import { staffLogout } from "/shared/api.js";
import { h } from "/shared/dom.js";
import { t, errorText } from "/shared/i18n.js";

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

/**
 * "Sign out": the server revokes the token and clears the cookie first; only then does the app
 * forget it (`forget()` drops the app's own live state) and `state` turn to the sign-in screen with
 * "you are signed out". While it runs `state.signingOut` is true (`redraw()` shows that). If the
 * server cannot be reached nothing changes, `say("error", …)` tells why, and it answers false.
 */
export async function signOut(state, { say, redraw, forget }) {
  if (state.signingOut) return false;
  state.signingOut = true;
  redraw();
  try {
    await staffLogout();
  } catch (error) {
    say("error", t("signin.signOutFailed", { reason: errorText(error) }));
    return false;
  } finally {
    state.signingOut = false;
    redraw();
  }
  forget();
  Object.assign(state, { screen: "signin", message: null, signinError: null, signinNotice: "signin.signedOut" });
  return true;
}
