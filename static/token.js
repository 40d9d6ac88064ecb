// The token page: fetches the session's access token from /api/token (login-from-cookie) and
// shows who it is for and how long it lives. Served from /static so the page's CSP needs no
// 'unsafe-inline'.
"use strict";

(function () {
  const card = document.getElementById("token-card");
  if (!card) return;
  const endpoint = card.dataset.endpoint;
  const $ = (id) => document.getElementById(id);
  let expiresAt = 0;
  let timer = null;

  function decodePayload(jwt) {
    const part = jwt.split(".")[1] || "";
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  }

  function setStatus(text, isError) {
    const el = $("token-status");
    el.textContent = text;
    el.className = isError ? "error" : "notice";
  }

  function tick() {
    const left = Math.max(0, Math.round(expiresAt - Date.now() / 1000));
    const m = Math.floor(left / 60);
    const s = String(left % 60).padStart(2, "0");
    $("token-expiry").textContent = left > 0 ? `${m}:${s}` : "expired — fetch a fresh token";
  }

  function show(token, expiresIn) {
    let claims = {};
    try {
      claims = decodePayload(token);
    } catch (e) {
      // Not a JWT (an opaque token from another provider): show what the endpoint said.
      claims = { preferred_username: "(opaque token)" };
    }
    $("token-username").textContent = claims.preferred_username || "(none)";
    $("token-subject").textContent = claims.sub || "(none)";
    $("token-issuer").textContent = claims.iss || "";
    const aud = Array.isArray(claims.aud) ? claims.aud.join(", ") : claims.aud || "";
    $("token-audience").textContent = aud;
    const roles = (claims.realm_access && claims.realm_access.roles) || [];
    $("token-roles").textContent = roles.join(", ") || "(none)";
    $("token-value").textContent = token;
    expiresAt = Date.now() / 1000 + expiresIn;
    tick();
    if (timer) clearInterval(timer);
    timer = setInterval(tick, 1000);
  }

  async function load(fresh) {
    setStatus(fresh ? "Fetching a fresh token…" : "Fetching your token…", false);
    try {
      const response = await fetch(endpoint, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ process: "login-from-cookie", fresh: !!fresh }),
      });
      const body = await response.json();
      if (response.status === 401 && body.error && body.error.details) {
        setStatus("Your session has ended. Redirecting to sign in…", true);
        window.location.href = body.error.details;
        return;
      }
      if (!response.ok) {
        setStatus((body.error && body.error.message) || `Error ${response.status}`, true);
        return;
      }
      show(body.access_token, body.expires_in);
      setStatus(`Token received (${body.token_type}).`, false);
    } catch (e) {
      setStatus(`Could not reach keygate: ${e}`, true);
    }
  }

  $("token-refresh").addEventListener("click", () => load(true));
  load(false);
})();
