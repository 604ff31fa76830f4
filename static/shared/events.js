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
  return onEach(live, EVENT_TYPES, handler);
}

/** What the public board stream sends (`/events/board`): board items, drinks left, public config. */
export const BOARD_EVENT_TYPES = [
  "Validator.NewOrder",
  "OrderManager.WaitingCompletion",
  "OrderManager.MakeOrder",
  "OrderManager.OrderCompleted",
  "OrderManager.OrderCancelled",
  "OrderProcessor.OrderTimeOut",
  "ConfigService.ConfigChanged",
];

/** Calls `handler(event, type)` for every board stream event type. */
export function onBoardEvents(live, handler) {
  return onEach(live, BOARD_EVENT_TYPES, handler);
}

function onEach(live, types, handler) {
  for (const type of types) live.on(type, handler);
  return live;
}
