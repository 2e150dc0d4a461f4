#ifndef RELAYWATCH_CRASHPOINT_H
#define RELAYWATCH_CRASHPOINT_H

/*
 * Deterministic fault injection for the exactly-once test suite. When the environment variable
 * RELAYWATCH_CRASH names a point as "NAME:N", the N-th time the program passes
 * crashpoint("NAME") it kills itself with SIGKILL, as a power cut or the OOM killer would: no
 * atexit handlers, no flushing, no cleanup. RELAYWATCH_PAUSE="NAME:N" stops the process there
 * instead (SIGSTOP), so that a test can break something around it, at that very moment, before
 * it sends SIGCONT. Unset, a crashpoint costs a few branches.
 */
void crashpoint(const char *name);

#endif
