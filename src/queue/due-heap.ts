/**
 * A binary min-heap by due time, ties in the order of `seq`: the in-memory store's index of its jobs, so
 * that taking the due ones and finding the next one cost a logarithm of the jobs kept, not a scan of them
 * (with scheduled logouts, most jobs kept are due hours from now).
 */
export interface DueNode {
  /** When it is due, in ms since the epoch. */
  at: number;
  /** Tie-breaker, growing: the order in which nodes were made. */
  seq: number;
}

function before(a: DueNode, b: DueNode): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

export class DueHeap<T extends DueNode> {
  private items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(node: T): void {
    const items = this.items;
    items.push(node);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i], items[parent])) break;
      [items[i], items[parent]] = [items[parent], items[i]];
      i = parent;
    }
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      this.down(0);
    }
    return top;
  }

  /** Replaces the content with `nodes` (to drop the nodes that went stale). */
  rebuild(nodes: T[]): void {
    this.items = nodes;
    for (let i = (nodes.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  private down(start: number): void {
    const items = this.items;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let least = i;
      if (left < items.length && before(items[left], items[least])) least = left;
      if (right < items.length && before(items[right], items[least])) least = right;
      if (least === i) return;
      [items[i], items[least]] = [items[least], items[i]];
      i = least;
    }
  }
}
