/**
 * Scheduled items in a binary min-heap ordered by (dueAt, insertion order),
 * with an index by id so one can be found or removed (cancelled) in
 * O(log n), and the first k in due order listed without sorting them all.
 */

interface Node<T> {
  item: T;
  dueAt: number;
  seq: number;
  /** Where the node is in the heap array (kept up to date by every move). */
  pos: number;
}

export class TimerHeap<T extends { readonly id: string; readonly dueAt: number }> {
  readonly #heap: Node<T>[] = [];
  readonly #byId = new Map<string, Node<T>>();
  #seq = 0;

  get size(): number {
    return this.#heap.length;
  }

  has(id: string): boolean {
    return this.#byId.has(id);
  }

  get(id: string): T | undefined {
    return this.#byId.get(id)?.item;
  }

  /** The earliest item (ties: the first pushed). */
  peek(): T | undefined {
    return this.#heap[0]?.item;
  }

  /** Adds an item; throws a RangeError if one with its id is in the heap already. */
  push(item: T): void {
    if (this.#byId.has(item.id)) throw new RangeError(`an item with id ${JSON.stringify(item.id)} is scheduled already`);
    const node: Node<T> = { item, dueAt: item.dueAt, seq: this.#seq++, pos: this.#heap.length };
    this.#heap.push(node);
    this.#byId.set(item.id, node);
    this.#up(node.pos);
  }

  pop(): T | undefined {
    const top = this.#heap[0];
    if (top === undefined) return undefined;
    this.#removeAt(0);
    return top.item;
  }

  remove(id: string): T | undefined {
    const node = this.#byId.get(id);
    if (node === undefined) return undefined;
    this.#removeAt(node.pos);
    return node.item;
  }

  /** Every item, in no particular order. */
  *values(): IterableIterator<T> {
    for (const node of this.#heap) yield node.item;
  }

  clear(): void {
    this.#heap.length = 0;
    this.#byId.clear();
  }

  /**
   * The first `count` items in due order (of those `filter` accepts). Without
   * a filter: a best-first walk of the heap's tree, O(count log count), so
   * the head of a large heap is listed without touching the rest. With one:
   * a linear scan keeping the best `count` in a bounded max-heap,
   * O(n log count), since matching items may be anywhere.
   */
  first(count: number, filter?: (item: T) => boolean): T[] {
    if (count <= 0 || this.#heap.length === 0) return [];
    return filter === undefined ? this.#walk(count) : this.#scan(count, filter);
  }

  #walk(count: number): T[] {
    const out: T[] = [];
    // Frontier of heap positions whose parents were taken, itself a min-heap by (dueAt, seq).
    const frontier = [0];
    const less = (a: number, b: number): boolean => this.#less(this.#heap[a], this.#heap[b]);
    while (frontier.length > 0 && out.length < count) {
      const pos = popMin(frontier, less);
      out.push(this.#heap[pos].item);
      for (const child of [2 * pos + 1, 2 * pos + 2]) if (child < this.#heap.length) pushMin(frontier, child, less);
    }
    return out;
  }

  #scan(count: number, filter: (item: T) => boolean): T[] {
    // The best `count` so far, in a max-heap: its root is the worst kept, replaced by anything better.
    const kept: Node<T>[] = [];
    const more = (a: Node<T>, b: Node<T>): boolean => this.#less(b, a);
    for (const node of this.#heap) {
      if (!filter(node.item)) continue;
      if (kept.length < count) pushMin(kept, node, more);
      else if (this.#less(node, kept[0])) {
        kept[0] = node;
        siftDown(kept, 0, more);
      }
    }
    return kept.sort((a, b) => (this.#less(a, b) ? -1 : 1)).map((n) => n.item);
  }

  #less(a: Node<T>, b: Node<T>): boolean {
    return a.dueAt < b.dueAt || (a.dueAt === b.dueAt && a.seq < b.seq);
  }

  #removeAt(pos: number): void {
    const heap = this.#heap;
    const node = heap[pos];
    this.#byId.delete(node.item.id);
    const last = heap.pop()!;
    if (pos === heap.length) return;
    heap[pos] = last;
    last.pos = pos;
    this.#up(pos);
    this.#down(last.pos);
  }

  #up(pos: number): void {
    const heap = this.#heap;
    const node = heap[pos];
    while (pos > 0) {
      const parent = (pos - 1) >> 1;
      if (!this.#less(node, heap[parent])) break;
      heap[pos] = heap[parent];
      heap[pos].pos = pos;
      pos = parent;
    }
    heap[pos] = node;
    node.pos = pos;
  }

  #down(pos: number): void {
    const heap = this.#heap;
    const node = heap[pos];
    const n = heap.length;
    for (;;) {
      let child = 2 * pos + 1;
      if (child >= n) break;
      if (child + 1 < n && this.#less(heap[child + 1], heap[child])) child++;
      if (!this.#less(heap[child], node)) break;
      heap[pos] = heap[child];
      heap[pos].pos = pos;
      pos = child;
    }
    heap[pos] = node;
    node.pos = pos;
  }
}

// A plain array heap for the small working sets of `first`.

function pushMin<V>(h: V[], v: V, less: (a: V, b: V) => boolean): void {
  let i = h.length;
  h.push(v);
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (!less(h[i], h[p])) break;
    [h[i], h[p]] = [h[p], h[i]];
    i = p;
  }
}

function popMin<V>(h: V[], less: (a: V, b: V) => boolean): V {
  const top = h[0];
  const last = h.pop()!;
  if (h.length > 0) {
    h[0] = last;
    siftDown(h, 0, less);
  }
  return top;
}

function siftDown<V>(h: V[], i: number, less: (a: V, b: V) => boolean): void {
  for (;;) {
    let c = 2 * i + 1;
    if (c >= h.length) return;
    if (c + 1 < h.length && less(h[c + 1], h[c])) c++;
    if (!less(h[c], h[i])) return;
    [h[i], h[c]] = [h[c], h[i]];
    i = c;
  }
}
