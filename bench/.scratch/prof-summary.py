import json,sys,collections
p=json.load(open(sys.argv[1]))
nodes={n['id']:n for n in p['nodes']}
dt=collections.Counter()
samples=p['samples']; deltas=p['timeDeltas']
for s,d in zip(samples,deltas): dt[s]+=d
selft=collections.Counter()
for nid,t in dt.items():
    cf=nodes[nid]['callFrame']
    key=f"{cf['functionName'] or '(anon)'} {cf['url'].split('/')[-1]}:{cf['lineNumber']}"
    selft[key]+=t
tot=sum(selft.values())
print("total ms", tot/1000)
for k,v in selft.most_common(int(sys.argv[2]) if len(sys.argv)>2 else 30): print(f"{v/1000:9.1f} {k}")
# inclusive by url
parent={}
for n in p['nodes']:
    for c in n.get('children',[]): parent[c]=n['id']
incl=collections.Counter()
for nid,t in dt.items():
    seen=set(); x=nid
    while x is not None:
        cf=nodes[x]['callFrame']; key=f"{cf['functionName'] or '(anon)'} {cf['url'].split('/')[-1]}:{cf['lineNumber']}"
        if key not in seen: incl[key]+=t; seen.add(key)
        x=parent.get(x)
print("--- inclusive")
for k,v in incl.most_common(40): print(f"{v/1000:9.1f} {k}")
