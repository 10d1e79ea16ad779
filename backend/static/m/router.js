// The views' routes (hash patterns), registered by each view module.
export const routes = [];

export function route(pattern, render) {
  routes.push([pattern, render]);
}

export function go(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}
