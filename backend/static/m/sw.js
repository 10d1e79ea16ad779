// The service worker: shows a Web Push notification (its payload is the notification's title
// and body, never a child's data) and opens the app when it is tapped.
self.addEventListener("push", (event) => {
  let message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch {
    message = {};
  }
  event.waitUntil(
    self.registration.showNotification(message.title || "学籍信息核对", {
      body: message.body || "",
      data: message.data || {},
      tag: message.data?.notification_id ? String(message.data.notification_id) : undefined,
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(
    self.clients.matchAll({ type: "window" }).then((windows) => {
      const open = windows.find((w) => new URL(w.url).pathname.startsWith("/m"));
      return open ? open.focus() : self.clients.openWindow("/m/#/queue");
    }),
  );
});
