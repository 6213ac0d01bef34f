"""faust's aiokafka transport with a configurable fetch wait.

faust-streaming builds its worker's AIOKafkaConsumer with `fetch_max_wait_ms=1500` fixed. On a
broker that holds a fetch for its full wait while data trickles in (tansu does, under 1,000
events/s over four partitions), an event then sits up to 1.5 s before the worker sees it:
measured, produce-to-consume p50 393 ms and p99 751 ms at 1,500 ms; 32 ms and 55 ms at 100 ms.
The consumer reads the value when it starts, so setting it on the new consumer is enough.

It also takes the cost of faust's per-message hand-over down (docs/throughput.md): faust's fetcher
passes each message to its topic's callback through `Service.wait_first(callback, suspend_flow)`,
which makes four tasks and an `asyncio.wait` per message, about a sixth of the worker's CPU time,
although the callback almost always finishes in its first step (the message put on a queue with
room). Here that first step runs at once; only a callback that has to wait is handed to
`wait_first`, as before, so a rebalance can still cut it short.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from types import CoroutineType
from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.services import WaitResults


class Resumed:
    """The rest of a coroutine whose first step has run (it yielded `pending`), awaitable as the
    coroutine itself would have been: what the event loop sends or throws in is passed on."""

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self.coro, self.pending = coro, pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self.coro, self.pending
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


def is_message_handover(coros: tuple[Any, ...]) -> bool:
    """The fetcher's per-message call: (the conductor's on_message coroutine, suspend_flow.wait())."""
    return (len(coros) == 2 and type(coros[0]) is CoroutineType and type(coros[1]) is CoroutineType
            and coros[0].__qualname__.endswith("on_message"))


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    fetch_max_wait_ms: int = 100

    def _create_worker_consumer(self, transport: faust_aiokafka.Transport) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms  # read by AIOKafkaConsumer.start()
        return consumer


def transport_class(fetch_max_wait_ms: int) -> type[faust_aiokafka.Transport]:
    """faust's aiokafka Transport whose worker consumer waits at most `fetch_max_wait_ms` per fetch."""
    wait = max(1, int(fetch_max_wait_ms))

    class ConsumerThread(_ConsumerThread):
        fetch_max_wait_ms = wait

    class QuickConsumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

        async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
            if (timeout is not None or not is_message_handover(coros) or self.suspend_flow.is_set()
                    or self._stopped.is_set() or self._crashed.is_set()):
                return await super().wait_first(*coros, timeout=timeout)
            callback, suspended = coros
            try:
                pending = callback.send(None)
            except StopIteration as done:  # the usual case: delivered without waiting
                suspended.close()
                return WaitResults([callback], [done.value], False)
            except BaseException:
                suspended.close()
                raise
            return await super().wait_first(Resumed(callback, pending), suspended)

    class Transport(faust_aiokafka.Transport):
        Consumer = QuickConsumer

    return Transport


def install_transport(app: Any, fetch_max_wait_ms: int) -> None:
    """Give `app` (a faust.App not yet started) the transport above, for its configured brokers."""
    app.transport = transport_class(fetch_max_wait_ms)(app.conf.broker_consumer, app)
