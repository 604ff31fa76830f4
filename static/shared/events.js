// The event types the apps listen to. EventSource delivers a named SSE event (`event: <type>`)
// only to listeners of that name, so `LiveStream.on("*")` alone hears nothing: subscribe by name.
export const EVENT_TYPES = [
  "Validator.NewOrder",
  "OrderProcessor.WorkflowStarted",
  "OrderManager.WaitingCompletion",
  "OrderManager.MakeOrder",
  "OrderManager.OrderCompleted",
  "OrderManager.OrderCancelled",
  "OrderProcessor.OrderTimeOut",
  "OrderProcessor.orderFinished",
  "OrderProcessor.ShopUnavailable",
  "ConfigService.ConfigChanged",
  "OrderManager.DrinkAverageTime",
  "queue",
];

/** Calls `handler(event, type)` for every event type above. */
export function onEveryEvent(live, handler) {
  for (const type of EVENT_TYPES) live.on(type, handler);
  return live;
}
