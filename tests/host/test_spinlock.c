/*
 * test_spinlock.c - a contended strata lock waits through the platform's
 * mm_platform_spin_wait(spins) (strata/platform.h: pause, back off, and
 * where a holder can be preempted, yield), with spins counting 1, 2, 3,
 * ... in one acquisition; a free lock never calls it.
 *
 * The test defines mm_platform_spin_wait itself (it overrides the weak
 * default of mm/platform_default.c): it counts the calls and yields, so
 * the thread holding the lock can watch a second thread wait.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <strata/spinlock.h>

#include "harness.h"

static atomic_uint waits, last_spins, out_of_step;

void mm_platform_spin_wait(unsigned spins)
{
	unsigned prev = atomic_exchange(&last_spins, spins);

	if (spins != 1 && spins != prev + 1)
		atomic_fetch_add(&out_of_step, 1);
	atomic_fetch_add(&waits, 1);
	sched_yield();
}

static mm_spinlock_t lock = MM_SPINLOCK_INIT;   /* level 0: no lockdep order */
static atomic_int waiter_has_it;

static void *waiter(void *arg)
{
	(void)arg;
	mm_spin_lock(&lock);
	atomic_store(&waiter_has_it, 1);
	mm_spin_unlock(&lock);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

TEST(spin_wait_called_while_the_lock_is_held)
{
	atomic_store(&waits, 0);
	atomic_store(&out_of_step, 0);
	mm_spin_lock(&lock);
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, waiter, NULL) == 0, "pthread_create");
	/* hold the lock until the waiter has called the hook 100 times; a
	 * lock that never calls it would spin silently: give up after 10 s
	 * (a bound, not a measurement) so the test fails instead of hanging */
	double give_up = now_s() + 10;
	while (atomic_load(&waits) < 100 && now_s() < give_up)
		sched_yield();
	unsigned seen = atomic_load(&waits);
	int early = atomic_load(&waiter_has_it);
	mm_spin_unlock(&lock);
	pthread_join(t, NULL);
	CHECK(!early, "the waiter took a held lock");
	CHECK(seen >= 100, "the waiter called mm_platform_spin_wait %u times while the lock was held",
	      seen);
	CHECK(atomic_load(&out_of_step) == 0, "spins did not count 1, 2, 3, ... (%u out of step)",
	      atomic_load(&out_of_step));
	CHECK(atomic_load(&waiter_has_it), "the waiter never got the lock");
}

TEST(spin_wait_not_called_on_a_free_lock)
{
	atomic_store(&waits, 0);
	for (int i = 0; i < 1000; i++) {
		mm_spin_lock(&lock);
		mm_spin_unlock(&lock);
	}
	CHECK(atomic_load(&waits) == 0, "%u waits on a free lock", atomic_load(&waits));
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}
