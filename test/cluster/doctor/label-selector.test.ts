import t from 'tap'
import { mismatch } from '../../../cluster/doctor/label-selector.js'

t.test('label selectors as the API server evaluates them', async t => {
  t.equal(mismatch(undefined, {}), undefined, 'no selector matches everything')
  t.equal(mismatch({}, { a: '1' }), undefined)
  t.equal(mismatch({ matchLabels: { team: 'ml' } }, { team: 'ml' }), undefined)
  t.equal(mismatch({ matchLabels: { team: 'ml' } }, { team: 'web' }), 'team=ml')
  const sel = (operator: string, values?: string[]) => ({ matchExpressions: [{ key: 'k', operator, ...(values === undefined ? {} : { values }) }] })
  t.equal(mismatch(sel('In', ['a', 'b']), { k: 'b' }), undefined)
  t.equal(mismatch(sel('In', ['a', 'b']), {}), 'k In (a, b)')
  t.equal(mismatch(sel('NotIn', ['disabled']), {}), undefined)
  t.equal(mismatch(sel('NotIn', ['disabled']), { k: 'disabled' }), 'k NotIn (disabled)')
  t.equal(mismatch(sel('Exists'), { k: '' }), undefined)
  t.equal(mismatch(sel('Exists'), {}), 'k Exists')
  t.equal(mismatch(sel('DoesNotExist'), { k: 'x' }), 'k DoesNotExist')
  t.equal(mismatch(sel('Bogus'), { k: 'x' }), 'k Bogus', 'an unknown operator never matches')
})
