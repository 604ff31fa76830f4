// A short two-note chime with Web Audio (no sound files, no network).
// Browsers only allow sound after a user gesture: call `unlockSound()` from a click handler.

let context = null;

export function unlockSound() {
  try {
    context ??= new AudioContext();
    if (context.state === "suspended") context.resume();
  } catch {
    context = null;
  }
}

export function chime() {
  if (!context) unlockSound();
  if (!context || context.state !== "running") return;
  const start = context.currentTime;
  [880, 1320].forEach((frequency, index) => {
    const oscillator = context.createOscillator();
    const gain = context.createGain();
    oscillator.type = "sine";
    oscillator.frequency.value = frequency;
    const at = start + index * 0.18;
    gain.gain.setValueAtTime(0.0001, at);
    gain.gain.exponentialRampToValueAtTime(0.3, at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.35);
    oscillator.connect(gain).connect(context.destination);
    oscillator.start(at);
    oscillator.stop(at + 0.4);
  });
}
