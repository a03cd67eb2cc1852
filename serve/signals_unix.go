//go:build unix

package serve

/*
#include <signal.h>
#include <string.h>

#ifdef NSIG
#define JZ_NSIG NSIG
#else
#define JZ_NSIG 65
#endif

static struct sigaction jz_saved[JZ_NSIG];
static int jz_have[JZ_NSIG];

// jz_save records the current disposition of every signal.
static void jz_save(void) {
	for (int s = 1; s < JZ_NSIG; s++) {
		jz_have[s] = sigaction(s, NULL, &jz_saved[s]) == 0;
	}
}

// jz_restore puts back every disposition that changed since jz_save and
// returns how many it put back.
static int jz_restore(void) {
	int n = 0;
	for (int s = 1; s < JZ_NSIG; s++) {
		struct sigaction cur;
		if (!jz_have[s] || sigaction(s, NULL, &cur) != 0) {
			continue;
		}
		if (cur.sa_handler != jz_saved[s].sa_handler || cur.sa_flags != jz_saved[s].sa_flags) {
			if (sigaction(s, &jz_saved[s], NULL) == 0) {
				n++;
			}
		}
	}
	return n;
}
*/
import "C"

import "sync"

var signalMu sync.Mutex

// withGoSignalHandlers runs f and afterwards restores every signal handler
// that f replaced. Native libraries such as the CUDA execution provider
// install handlers without SA_ONSTACK, which crashes the Go runtime on the
// next signal (onnxruntime_go issue 140). It returns how many handlers had
// to be restored.
func withGoSignalHandlers(f func() error) (restored int, err error) {
	signalMu.Lock()
	defer signalMu.Unlock()
	C.jz_save()
	defer func() { restored = int(C.jz_restore()) }()
	return 0, f()
}
