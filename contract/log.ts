// How every part of the tracker reports what an operator should know. The assembly
// (engine/main.ts) writes it to stderr with a time and the level; tests collect it.
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export type Logger = (msg: string, level?: LogLevel) => void;
