export type { ListenerLimits } from "../config/config.js";
