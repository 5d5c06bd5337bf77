// The baseline: what a user would write without ringbus, one Piscina task per event.
export default function handle(event) {
  return event === undefined ? 0 : 1;
}
