package health

import (
	"slices"
	"sync"
)

// dispatcher delivers changes to subscribers from one goroutine, in the
// order they happened. Its queue has no bound: transitions are rare, and
// a check must never wait for a subscriber.
type dispatcher struct {
	// mu guards queue, subs and nextID. subs is copied on write, so a
	// delivery can use a snapshot without holding mu.
	mu     sync.Mutex
	queue  []Change
	subs   []subscriber
	nextID int

	// wake has room for one signal: "the queue may have something".
	wake chan struct{}
	quit chan struct{}
	done chan struct{}
}

func newDispatcher() *dispatcher {
	return &dispatcher{
		wake: make(chan struct{}, 1),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
}

func (d *dispatcher) subscribe(fn func(Change)) func() {
	d.mu.Lock()
	defer d.mu.Unlock()
	id := d.nextID
	d.nextID++
	d.subs = append(slices.Clip(d.subs), subscriber{id, fn})
	return func() {
		d.mu.Lock()
		d.subs = slices.DeleteFunc(slices.Clone(d.subs), func(s subscriber) bool { return s.id == id })
		d.mu.Unlock()
	}
}

type subscriber struct {
	id int
	fn func(Change)
}

func (d *dispatcher) emit(changes ...Change) {
	if len(changes) == 0 {
		return
	}
	d.mu.Lock()
	d.queue = append(d.queue, changes...)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) emit1(ch Change) { d.emit(ch) }

func (d *dispatcher) loop() {
	defer close(d.done)
	for {
		select {
		case <-d.wake:
			d.deliver()
		case <-d.quit:
			d.deliver()
			return
		}
	}
}

// deliver hands out everything queued, including what arrives meanwhile.
func (d *dispatcher) deliver() {
	for {
		d.mu.Lock()
		batch := d.queue
		d.queue = nil
		subs := d.subs
		d.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		for _, ch := range batch {
			for _, s := range subs {
				s.fn(ch)
			}
		}
	}
}

// close delivers what is queued and waits for the delivering goroutine.
// Nothing may be emitted once close is called.
func (d *dispatcher) close() {
	close(d.quit)
	<-d.done
}
