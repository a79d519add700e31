/** Puts process.env back as it was before a test changed it (added variables are removed). */
export function restoreEnv(saved: Readonly<NodeJS.ProcessEnv>): void {
  for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
  Object.assign(process.env, saved);
}
